"""Training an autoencoder: `train target input` with a pixel-wise loss, on both backends, from
the spec's words to the run folder's figures and pictures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import cnnc
from cnnc.cli import main
from cnnc.errors import SpecError
from cnnc.ir.train_config import TrainConfig, parse_train_config
from cnnc.passes.pipeline import training_graph
from cnnc.train.metrics import ReconstructionEvaluation, psnr, reconstruction_from_predictions

# 12x12 like the synthetic data: an encoder, a skip joined by concatenate, a sigmoid output.
AE_SPEC = """\
network ae
input 12x12x1
e1: conv2d 4 3 same relu
e2: conv2d 4 3 same relu
concatenate(e1, e2)
conv2d 1 1 sigmoid
train {
  target input
  loss mse
  epochs 2  batch_size 16
  optimizer adam learning_rate=0.01
  validation_size 32
  augment shift=1
  seed 3
}
"""
AE_YAML = """\
network: ae
input: [12, 12, 1]
layers:
  - {conv2d: [4, 3], padding: same, activation: relu, name: e1}
  - {conv2d: [4, 3], padding: same, activation: relu, name: e2}
  - concatenate: {inputs: [e1, e2]}
  - {conv2d: [1, 1], activation: sigmoid}
train:
  target: input
  loss: mse
  epochs: 2
  batch_size: 16
  optimizer: {name: adam, learning_rate: 0.01}
  validation_size: 32
  augment: {shift: 1}
  seed: 3
"""


def test_target_input_is_a_setting_in_both_languages():
    dsl, yaml = cnnc.load_spec(AE_SPEC), cnnc.load_spec(AE_YAML)
    assert dsl == yaml
    assert dsl.train.target == "input" and dsl.train.reconstruction
    assert dsl.train.loss == "mean_squared_error"
    assert TrainConfig().target == "labels" and not TrainConfig().reconstruction


def test_target_input_needs_a_pixel_wise_loss():
    with pytest.raises(SpecError) as info:
        parse_train_config({"target": "input"})
    assert info.value.path == "train.target"
    assert "pixel-wise loss" in info.value.message and "sparse_categorical" in info.value.message
    with pytest.raises(SpecError) as info:
        parse_train_config({"target": "pixels", "loss": "mse"})
    assert info.value.path == "train.target" and "labels" in str(info.value)


def test_the_output_must_be_shaped_like_the_input():
    graph = cnnc.load_spec(AE_SPEC.replace("conv2d 1 1 sigmoid", "conv2d 2 1 sigmoid"))
    with pytest.raises(SpecError) as info:
        training_graph(graph)
    text = str(info.value)
    assert "shaped like the input (None, 12, 12, 1)" in text and "(None, 12, 12, 2)" in text
    assert f"'{graph.outputs[0]}'" in text  # the output layer is named


def test_psnr_and_mse_by_hand():
    assert psnr(0.01) == pytest.approx(20.0)
    assert psnr(1e-4) == pytest.approx(40.0)
    assert math.isinf(psnr(0.0))
    x = np.zeros((2, 2, 2, 1), np.float32)
    pred = x.copy()
    pred[0, 0, 0, 0] = 0.4  # squared error 0.16 in 8 pixels
    ev = reconstruction_from_predictions(pred, x)
    assert ev.mse == pytest.approx(0.02) and ev.count == 2
    assert ev.psnr == pytest.approx(10 * math.log10(1 / 0.02))
    assert ev.to_dict()["psnr_db"] == pytest.approx(ev.psnr)


def _images(n: int, seed: int) -> np.ndarray:
    """Smooth blobs in [0, 1], which a small convolutional network reproduces easily."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:12, 0:12]
    centres = rng.uniform(3, 9, size=(n, 2))
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    return np.exp(-d2 / 8.0)[..., None].astype(np.float32)


def test_fit_reconstructs_and_evaluate_reports_mse(backend):
    model = cnnc.compile(AE_SPEC, backend=backend, seed=1)
    x, x_test = _images(256, 0), _images(64, 1)
    before = float(((model.predict(x_test) - x_test) ** 2).mean())
    history = model.fit(x, epochs=6, verbose=0)
    records = history.epochs
    assert "accuracy" not in records[0] and "val_accuracy" not in records[0]
    assert records[-1]["loss"] < records[0]["loss"]
    ev = model.evaluate(x_test, verbose=0)
    assert isinstance(ev, ReconstructionEvaluation)
    # The figures are those of the predictions, computed here independently.
    want = float(((model.predict(x_test).astype(np.float64) - x_test) ** 2).mean())
    assert ev.mse == pytest.approx(want, rel=1e-6)
    assert ev.mse < before / 4, (before, ev.mse)


def test_the_training_loss_is_the_pixel_mse(backend):
    """One step's loss is the mean over every pixel of (output - input)^2 before the step."""
    model = cnnc.compile(AE_SPEC, backend=backend, seed=2)
    x = _images(8, 3)
    want = float(((model.predict(x).astype(np.float64) - x) ** 2).mean())
    assert model.train_step(x, x) == pytest.approx(want, rel=1e-5)


def test_cnnc_run_end_to_end(tiny_data, tmp_path, capsys, backend):
    spec = tmp_path / "ae.cnn"
    spec.write_text(AE_SPEC)
    out = tmp_path / "run"
    assert main(["run", str(spec), "--data", str(tiny_data), "--out", str(out),
                 "--backend", backend, "--progress", "off"]) == 0
    text = capsys.readouterr().out
    assert "epoch 2/2" in text and "val_loss" in text and "accuracy" not in text
    assert "test      mse " in text and " dB (48 images)" in text
    test = json.loads((out / "test_metrics.json").read_text())
    assert set(test) == {"loss", "mse", "psnr_db", "count"} and test["count"] == 48
    assert test["psnr_db"] == pytest.approx(10 * math.log10(1 / test["mse"]))
    names = {p.name for p in out.iterdir()}
    assert "confusion_matrix.csv" not in names and "confusion.png" not in names
    assert "mistakes.png" not in names
    assert (out / "reconstructions.png").stat().st_size > 1000
    page = (out / "report.html").read_text()
    assert "Test mean squared error" in page and "reconstructions.png" in page
    assert "test        mse" in (out / "summary.txt").read_text()
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,loss,accuracy,val_loss")  # accuracy columns left empty
    # cnnc eval of the weights reports the same figures.
    assert main(["eval", str(spec), "--weights", str(out / "weights.safetensors"),
                 "--backend", backend, "--data", str(tiny_data)]) == 0
    assert f"mse {test['mse']:.5f}" in capsys.readouterr().out


@pytest.mark.parametrize("noise", ["", "\n  noise 0.2"], ids=["plain", "denoising"])
def test_resume_continues_to_the_same_weights(tiny_data, tmp_path, noise):
    spec = tmp_path / "ae.cnn"
    spec.write_text(AE_SPEC.replace("seed 3", "seed 3" + noise))
    base = ["--data", str(tiny_data), "--backend", "numpy", "--progress", "off"]
    assert main(["run", str(spec), "--out", str(tmp_path / "straight"), *base]) == 0
    assert main(["run", str(spec), "--out", str(tmp_path / "part"), "--epochs", "1", *base]) == 0
    assert main(["run", "--resume", str(tmp_path / "part"), "--epochs", "2", *base[2:]]) == 0
    from safetensors.numpy import load_file

    a = load_file(str(tmp_path / "straight" / "weights.safetensors"))
    b = load_file(str(tmp_path / "part" / "weights.safetensors"))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_noise_needs_target_input():
    with pytest.raises(SpecError) as info:
        parse_train_config({"noise": 0.2})
    assert info.value.path == "train.noise" and "target input" in info.value.message
    with pytest.raises(SpecError) as info:
        parse_train_config({"target": "input", "loss": "mse", "noise": -1})
    assert info.value.path == "train.noise"
    assert parse_train_config({"target": "input", "loss": "mse", "noise": 0.3}).noise == 0.3


def test_noisy_inputs_are_reproducible_and_clipped():
    from cnnc.data.augment import noisy

    x = np.full((3, 4, 4, 1), 0.5, np.float32)
    a, b = noisy(x, 0.2, 1, 0, 16), noisy(x, 0.2, 1, 0, 16)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and not np.array_equal(a, x)
    assert not np.array_equal(a, noisy(x, 0.2, 1, 0, 32))  # another batch, other noise
    assert not np.array_equal(a, noisy(x, 0.2, 1, 1, 16))  # another epoch, other noise
    big = noisy(x, 5.0, 0, 0)
    assert big.min() == 0.0 and big.max() == 1.0  # clipped to the images' range
    assert noisy(x, 0.0, 0, 0) is x


def test_a_denoising_autoencoder_is_evaluated_on_noisy_inputs(backend):
    model = cnnc.compile(AE_SPEC.replace("seed 3", "seed 3\n  noise 0.3"), backend=backend,
                         seed=1)
    assert model.train_config.noise == 0.3
    x = _images(64, 0)
    model.fit(x, epochs=2, verbose=0)
    ev = model.evaluate(x[:16], verbose=0)
    from cnnc.train.loop import reconstruction_inputs

    given = reconstruction_inputs(x[:16], 0.3, model.train_config.seed)
    assert not np.allclose(given, x[:16])
    want = float(((model.predict(given).astype(np.float64) - x[:16]) ** 2).mean())
    assert ev.mse == pytest.approx(want, rel=1e-6)


def test_cnnc_run_denoising(tiny_data, tmp_path, capsys):
    spec = tmp_path / "dae.cnn"
    spec.write_text(AE_SPEC.replace("seed 3", "seed 3\n  noise 0.2"))
    out = tmp_path / "run"
    assert main(["run", str(spec), "--data", str(tiny_data), "--out", str(out),
                 "--backend", "numpy", "--progress", "off", "--epochs", "1"]) == 0
    assert "target input with noise 0.2" in capsys.readouterr().out
    assert (out / "reconstructions.png").stat().st_size > 1000
