"""A spec that begins with `rescaling 1/255` sees raw 0..255 pixels from every data entry point
(cnnc.data.dataset.raw_pixels): training data, evaluation, `cnnc eval`, `cnnc predict` on arrays
and images, and the streamed path, each scaled exactly once, by the model.

The probe model sums its four scaled pixels into class 0's logit (class 1's is 0): an image of
255s gives logits (4, 0), probability 1/(1 + e^-4) = 0.98201 for class 0, and a cross-entropy of
log(1 + e^-4) = 0.018150 for label 0; scaled twice it would be (4/255, 0): 0.50392 and 0.68532.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

import cnnc
from cnnc.cli import main
from cnnc.data.dataset import raw_pixels, to_inputs

PROBE = """input 2x2x1
rescaling 0.00392156862745098
flatten
dense 2 softmax
"""
P_CLASS0 = 1.0 / (1.0 + math.exp(-4.0))  # scaled once: logits (4, 0)
LOSS = math.log(1.0 + math.exp(-4.0))
WHITE = np.full((3, 2, 2), 255, np.uint8)


def _probe(backend: str = "numpy") -> cnnc.Model:
    model = cnnc.compile(PROBE, backend=backend)
    weights = model.get_weights()
    kernel = next(k for k in weights if k.endswith("kernel"))
    bias = next(k for k in weights if k.endswith("bias"))
    weights[kernel] = np.array([[1.0, 0.0]] * 4, np.float32)
    weights[bias] = np.zeros(2, np.float32)
    model.set_weights(weights)
    return model


@pytest.fixture
def npz(tmp_path):
    path = tmp_path / "white.npz"
    np.savez(path, x_train=np.concatenate([WHITE, WHITE]), y_train=np.zeros(6, np.int64),
             x_test=WHITE, y_test=np.zeros(3, np.int64))
    return path


@pytest.fixture
def saved(tmp_path):
    spec = tmp_path / "probe.cnn"
    spec.write_text(PROBE)
    weights = tmp_path / "w.safetensors"
    _probe().save_weights(str(weights))
    return spec, weights


def test_the_helper_and_to_inputs_scale_once():
    assert raw_pixels(cnnc.load_spec(PROBE))
    assert not raw_pixels(cnnc.load_spec("input 2x2x1\nflatten\ndense 2 softmax"))
    pixels = np.array([[[0, 128], [255, 1]]], np.uint8)
    np.testing.assert_array_equal(to_inputs(pixels, (2, 2, 1), raw=True)[0, ..., 0],
                                  [[0.0, 128.0], [255.0, 1.0]])
    np.testing.assert_array_equal(to_inputs(pixels, (2, 2, 1))[0, ..., 0],
                                  np.array([[0, 128], [255, 1]], np.float32) / np.float32(255))


def test_fit_and_evaluate_from_the_spec_dataset_see_raw_pixels(npz):
    model = _probe()
    ev = model.evaluate(data_dir=npz, verbose=0)
    assert ev.loss == pytest.approx(LOSS, rel=1e-5)
    from cnnc.data.dataset import load_configured
    from cnnc.train.fit import input_shape, prepare_data

    dataset = load_configured(model.train_config, npz, input_shape(model))
    data = prepare_data(model.train_config, dataset, input_shape(model),
                        raw=raw_pixels(model.graph))
    assert float(np.max(data.train.x)) == 255.0 and float(np.max(data.test.x)) == 255.0


def test_cnnc_run_trains_on_raw_pixels(npz, saved, tmp_path):
    from cnnc.train.session import RunOptions, RunSession

    spec, _ = saved
    session = RunSession(RunOptions(spec=str(spec), data=str(npz), out=str(tmp_path / "run"),
                                    backend="numpy", epochs=1, bars=False), io.StringIO())
    session.settings()
    data = session.data()
    np.testing.assert_array_equal(np.asarray(data.train.x), np.full((6, 2, 2, 1), 255.0))


def test_cnnc_eval_sees_raw_pixels(npz, saved):
    from cnnc.train.evaluation import evaluate_spec

    spec, weights = saved
    result = evaluate_spec(str(spec), str(weights), backend="numpy", data_dir=str(npz))
    assert result.evaluation.loss == pytest.approx(LOSS, rel=1e-5)


def _predicted(spec, weights, capsys, *inputs) -> list[float]:
    assert main(["predict", str(spec), "--weights", str(weights), "--backend", "numpy",
                 "--json", *map(str, inputs)]) == 0
    rows = json.loads(capsys.readouterr().out)
    return [next(t["probability"] for t in row["top"] if t["class"] == 0) for row in rows]


def test_cnnc_predict_on_arrays_and_images_sees_raw_pixels(saved, tmp_path, capsys):
    spec, weights = saved
    np.save(tmp_path / "white.npy", WHITE[0])
    assert _predicted(spec, weights, capsys, tmp_path / "white.npy") == \
        pytest.approx([P_CLASS0], rel=1e-5)
    Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    # A photo of grey 128 at the input's size: class 0's logit is 4 * 128/255, scaled once.
    Image.fromarray(np.full((2, 2), 128, np.uint8)).save(tmp_path / "grey.png")
    got = _predicted(spec, weights, capsys, tmp_path / "grey.png", "--invert", "no")
    assert got == pytest.approx([1.0 / (1.0 + math.exp(-4.0 * 128 / 255))], rel=1e-4)


def test_streamed_inputs_give_raw_pixels():
    from cnnc.data.streamed import DiskImages, StreamedInputs

    disk = DiskImages((2, 2), 2)
    disk.write(0, np.array([[0, 255], [7, 9]], np.uint8))
    disk.write(1, np.array([[1, 2], [3, 4]], np.uint8))
    raw = StreamedInputs(disk, (2, 2, 1), raw=True)
    np.testing.assert_array_equal(raw[np.array([0])][0, ..., 0], [[0.0, 255.0], [7.0, 9.0]])
    np.testing.assert_array_equal(raw[1:][np.array([0])][0, ..., 0], [[1.0, 2.0], [3.0, 4.0]])
    scaled = StreamedInputs(disk, (2, 2, 1))
    assert scaled[np.array([0])][0, 0, 1, 0] == np.float32(1.0)


def test_the_exported_model_carries_its_rescaling(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "probe.onnx"
    _probe().export_onnx(str(path), layout="nhwc")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    probs = session.run(None, {name: np.full((1, 2, 2, 1), 255.0, np.float32)})[0]
    assert probs[0, 0] == pytest.approx(P_CLASS0, rel=1e-5)


def test_pictures_feed_raw_pixels_and_draw_them_in_unit_range(npz, monkeypatch):
    pytest.importorskip("matplotlib")
    from cnnc.viz import mistakes
    from cnnc.viz.maps import resolve_image

    drawn = {}

    def capture(x, labels, probs, *args, **kw):
        drawn.update(x=x, probs=probs)

    monkeypatch.setattr(mistakes, "mistakes_figure", capture)
    model = _probe()
    mistakes.show_mistakes(model, data_dir=npz)
    np.testing.assert_allclose(drawn["probs"][:, 0], P_CLASS0, rtol=1e-5)
    assert float(np.max(drawn["x"])) == 1.0
    assert float(np.max(resolve_image(model, "test:0", data_dir=str(npz)).x)) == 255.0
