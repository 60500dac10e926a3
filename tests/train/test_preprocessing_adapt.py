"""Adapting normalization layers (cnnc/train/adapt.py): `Model.adapt` and `cnnc run`'s adapting
from the training split only, checked against NumPy's mean and variance of the same examples."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

import cnnc
from cnnc.cli import main
from cnnc.data.dataset import load_dataset
from cnnc.ir.train_config import TrainConfig
from cnnc.train.fit import prepare_data

ADAPT_SPEC = """\
network: adaptive
input: [12, 12, 1]
layers:
  - {rescaling: 255.0}
  - normalization
  - {conv2d: [3, 3], padding: same, activation: relu}
  - {normalization: null, name: deep}
  - flatten
  - {dense: 10, activation: softmax}
train:
  dataset: fashion_mnist
  epochs: 1
  batch_size: 16
  optimizer: {name: sgd, learning_rate: 0.01}
  validation_size: 32
  seed: 3
"""


def test_model_adapt_matches_numpy_mean_and_variance_per_channel():
    model = cnnc.compile("input 3x2x2\nnormalization\nflatten\ndense 2", backend="numpy",
                         dtype="float64")
    rng = np.random.default_rng(0)
    x = rng.normal([5.0, -3.0], [2.0, 0.5], size=(300, 3, 2, 2))  # 300: over one ADAPT_BATCH
    assert model.adapt(x) == ["normalization"]
    w = model.get_weights()
    np.testing.assert_allclose(w["normalization/mean"], x.reshape(-1, 2).mean(axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(w["normalization/variance"], x.reshape(-1, 2).var(axis=0),
                               rtol=1e-12)
    # After adapting, each channel of the same examples has mean 0 and variance 1.
    y = model.predict(x[:, :, :, :], batch_size=300)
    assert y.shape == (300, 2)


def test_adapt_sees_earlier_layers_and_adapted_normalizations():
    model = cnnc.compile("input 4\nrescaling 2.0 1.0\nn1: normalization\nrescaling 3.0\n"
                         "n2: normalization", backend="numpy", dtype="float64")
    x = np.arange(40.0).reshape(10, 4)
    assert model.adapt(x) == ["n1", "n2"]
    w = model.get_weights()
    np.testing.assert_allclose(w["n1/mean"], (2 * x + 1).mean(axis=0))
    np.testing.assert_allclose(w["n1/variance"], (2 * x + 1).var(axis=0))
    # n2 sees 3 * the standardised values: mean 0, variance 9.
    np.testing.assert_allclose(w["n2/mean"], 0.0, atol=1e-12)
    np.testing.assert_allclose(w["n2/variance"], 9.0, rtol=1e-12)
    np.testing.assert_allclose(model.predict(x).var(axis=0), 1.0, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "opencl"])
def test_cnnc_run_adapts_from_the_training_split_only(backend, tiny_data, tmp_path, capsys,
                                                      opencl_status):
    if backend == "opencl" and not opencl_status[0]:
        pytest.skip(opencl_status[1])
    spec = tmp_path / "adaptive.yaml"
    spec.write_text(ADAPT_SPEC)
    out = tmp_path / "run"
    assert main(["run", str(spec), "--data", str(tiny_data), "--out", str(out), "--backend",
                 backend, "--progress", "off"]) == 0
    assert "adapted   normalization, deep to the 128 training examples" in capsys.readouterr().out
    # The same training split as the run's: 160 examples less the 32 of validation, as the
    # run feeds them: 0..255 pixels, since only the rescaling layer reads the input.
    config = TrainConfig(dataset="fashion_mnist", validation_size=32, seed=3)
    data = prepare_data(config, load_dataset("fashion_mnist", str(tiny_data)), (12, 12, 1), None,
                        raw=True)
    x = data.train.x.astype(np.float64) * 255.0
    w = load_file(str(out / "weights.safetensors"))
    np.testing.assert_allclose(w["normalization/mean"], [x.mean()], rtol=1e-5)
    np.testing.assert_allclose(w["normalization/variance"], [x.var()], rtol=1e-5)
    # 'deep' is adapted before training, to the conv2d's outputs with its initial weights.
    assert w["deep/variance"].shape == (3,) and not np.all(w["deep/variance"] == 1.0)


def test_given_statistics_are_kept_and_not_adapted(tiny_data, tmp_path, capsys):
    spec = tmp_path / "given.yaml"
    spec.write_text(ADAPT_SPEC.replace("  - normalization\n",
                                       "  - {normalization: null, mean: 0.5, variance: 4.0}\n")
                    .replace("name: deep}", "name: deep, adapt: false}"))
    out = tmp_path / "run"
    assert main(["run", str(spec), "--data", str(tiny_data), "--out", str(out), "--backend",
                 "numpy", "--progress", "off"]) == 0
    assert "adapted" not in capsys.readouterr().out
    w = load_file(str(out / "weights.safetensors"))
    np.testing.assert_array_equal(w["normalization/mean"], [0.5])
    np.testing.assert_array_equal(w["normalization/variance"], [4.0])
    np.testing.assert_array_equal(w["deep/mean"], np.zeros(3))
