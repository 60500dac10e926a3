"""Every `cnnc` command that takes a SPEC takes an .onnx model, and an imported model trains on
like any cnnc network: `cnnc run model.onnx --dataset ...`, or a small YAML spec that points at
the model and gives the train settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper
from onnx_helpers import make_model, randn, save
from safetensors.numpy import load_file

import cnnc
from cnnc.cli import main
from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.errors import SpecError
from cnnc.testing.offline import isolate_datasets


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    isolate_datasets(monkeypatch, tmp_path / "cache")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("data"), train=160, test=48,
                                   shape=(12, 12))


@pytest.fixture
def model_path(tmp_path):
    """A small classifier for 12x12 images, as an exporter would write it (NCHW, softmax)."""
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="/Relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="/pool/MaxPool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
        helper.make_node("Gemm", ["f", "G", "GB"], ["g"], name="/fc/Gemm", transB=1),
        helper.make_node("Softmax", ["g"], ["probs"], name="/Softmax", axis=1),
    ]
    inits = {"W": randn(6, 1, 3, 3, scale=0.3), "B": np.zeros(6, np.float32),
             "G": randn(10, 6 * 6 * 6, seed=1, scale=0.05), "GB": np.zeros(10, np.float32)}
    return save(make_model(nodes, {"x": ("batch", 1, 12, 12)}, ["probs"], inits),
                tmp_path / "small.onnx")


def test_summary_of_an_onnx_model(model_path, capsys):
    assert main(["summary", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "conv" in out and "Conv2D" in out and "(None, 12, 12, 6)" in out and "fc" in out


def test_run_trains_an_onnx_model_from_its_weights(model_path, data, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", str(model_path), "--dataset", "fashion_mnist", "--data", str(data),
            "--epochs", "2", "--batch-size", "16", "--backend", "numpy", "--progress", "off",
            "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "epoch 2/2" in text and "test      accuracy" in text
    trained = load_file(str(out / "weights.safetensors"))
    imported = cnnc.load_spec(model_path).given_weights
    assert set(trained) == set(imported)
    assert not np.array_equal(trained["fc/kernel"], imported["fc/kernel"])
    losses = [row["loss"] for row in json.loads((out / "metrics.json").read_text())]
    assert losses[1] < losses[0]
    # The run's resolved spec is an ordinary YAML spec of the imported layers.
    assert cnnc.load_spec(out / "spec.yaml").nodes == cnnc.load_spec(model_path).nodes
    # And eval takes the run's weights for the .onnx spec as for any other.
    assert main(["eval", str(model_path), "--weights", str(out / "weights.safetensors"),
                 "--backend", "numpy", "--data", str(data)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_the_first_step_starts_from_the_imported_weights(model_path):
    graph = cnnc.load_spec(model_path)
    model = cnnc.compile(graph, backend="numpy", seed=123)
    for name, value in graph.given_weights.items():
        np.testing.assert_array_equal(model.get_weights()[name], value)


def test_a_yaml_spec_pointing_at_the_model(model_path, data, tmp_path, capsys):
    spec = tmp_path / "retrain.yaml"
    spec.write_text("network: retrained\nonnx: small.onnx\ntrain:\n  epochs: 1\n"
                    "  batch_size: 32\n  optimizer: {name: sgd, learning_rate: 0.05}\n")
    graph = cnnc.load_spec(spec)
    assert graph.name == "retrained" and graph.train.optimizer.name == "sgd"
    assert graph.given_weights is not None and len(graph.nodes) == 5
    out = tmp_path / "run"
    assert main(["run", str(spec), "--data", str(data), "--backend", "numpy", "--progress",
                 "off", "--out", str(out)]) == 0
    assert "epoch 1/1" in capsys.readouterr().out


@pytest.mark.parametrize("text, needle", [
    ("onnx: 3\n", "expected the path of an .onnx file"),
    ("onnx: small.onnx\nlayers: [flatten]\n", "remove 'layers'"),
    ("onnx: missing.onnx\n", "no such file"),
])
def test_yaml_pointer_errors(text, needle, model_path, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(SpecError, match=needle):
        cnnc.load_spec(spec)


def test_predict_and_eval_use_the_models_own_weights(model_path, data, tmp_path, capsys):
    image = tmp_path / "x.npy"
    np.save(image, np.random.default_rng(0).random((12, 12, 1), dtype=np.float32))
    assert main(["predict", str(model_path), str(image), "--backend", "numpy"]) == 0
    assert "x.npy" in capsys.readouterr().out
    assert main(["eval", str(model_path), "--backend", "numpy", "--data", str(data)]) == 0
    assert f"those in {model_path}" in capsys.readouterr().out


def test_a_spec_without_weights_still_needs_them(capsys):
    assert main(["eval", "lenet5", "--backend", "numpy"]) == 2
    assert "give --weights" in capsys.readouterr().err
