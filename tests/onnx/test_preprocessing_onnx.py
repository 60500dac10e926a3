"""ONNX export and import of the preprocessing layers (rescaling, normalization): round trips
checked by onnx.checker and onnxruntime, and input normalisation by constants written by hand
(torchvision's x / 255, (x - mean) / std) imported as those layers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx_helpers import RTOL, make_model, nhwc, ort_outputs, relative_error
from onnx_helpers import save as save_model

import cnnc

SPEC = """
network prep
input 5x4x3
r: rescaling 0.5 -0.25
n: normalization mean=(0.1, -0.2, 0.3) variance=(0.5, 2.0, 1.5)
conv2d 4 3 same
flatten
norm2: normalization mean=0.5 variance=0.25
dense 3
"""


def _ops(graph):
    return [n.op for n in graph.nodes]


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_round_trip_matches_onnxruntime(layout, backend, tmp_path):
    graph = cnnc.load_spec(SPEC)
    model = cnnc.compile(graph, backend=backend)
    path = tmp_path / "prep.onnx"
    model.export_onnx(str(path), layout=layout)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = np.random.default_rng(0).uniform(0, 255, (3, 5, 4, 3)).astype(np.float32)
    feed = x.transpose(0, 3, 1, 2) if layout == "nchw" else x
    (want,) = ort_outputs(path, {graph.inputs[0]: feed})
    assert relative_error(model.predict(x), want) <= RTOL
    back = cnnc.load_spec(path)
    # The same layers come back (norm2, after a flatten, as constants on ONNX's columns).
    assert _ops(back) == _ops(graph)
    np.testing.assert_allclose(back.node("norm2").attrs["variance"], (0.25,) * 80, rtol=1e-7)
    r = back.node("r")
    assert (r.attrs["scale"], r.attrs["offset"]) == (0.5, -0.25)
    n = back.node("n")
    np.testing.assert_allclose(n.attrs["mean"], (0.1, -0.2, 0.3), rtol=1e-7)
    np.testing.assert_allclose(n.attrs["variance"], (0.5, 2.0, 1.5), rtol=1e-6)
    assert relative_error(cnnc.compile(back, backend="numpy").predict(x), want) <= RTOL


def test_adapted_statistics_are_exported(tmp_path):
    model = cnnc.compile("input 2x2x2\nnormalization\nflatten\ndense 2", backend="numpy")
    x = np.random.default_rng(1).normal([3.0, -1.0], [2.0, 0.5], (20, 2, 2, 2))
    model.adapt(x.astype(np.float32))
    path = tmp_path / "adapted.onnx"
    model.export_onnx(str(path))
    (want,) = ort_outputs(path, {"input_layer": x.astype(np.float32).transpose(0, 3, 1, 2)})
    assert relative_error(model.predict(x.astype(np.float32)), want) <= RTOL
    proto = onnx.load(str(path))
    assert [n.op_type for n in proto.graph.node][:2] == ["Sub", "Div"]
    back = cnnc.load_spec(path)
    w = model.get_weights()
    np.testing.assert_allclose(back.node("normalization").attrs["mean"],
                               w["normalization/mean"], rtol=1e-7)


def test_export_writes_mul_and_add(tmp_path):
    cnnc.compile("input 4\nrescaling 2.0\nrescaling 0.5 1.0", backend="numpy").export_onnx(
        str(tmp_path / "r.onnx"))
    proto = onnx.load(str(tmp_path / "r.onnx"))
    assert [n.op_type for n in proto.graph.node] == ["Mul", "Mul", "Add"]
    back = cnnc.load_spec(tmp_path / "r.onnx")
    # x * 2, then * 0.5 + 1: one layer, as the import folds a chain of constants on the input
    assert [(n.op, n.attrs["scale"], n.attrs["offset"]) for n in back.nodes[1:]] == [
        ("rescaling", 1.0, 1.0)]


def _torchvision_style(c=3):
    """x / 255, - mean, / std on an NCHW input, then a 1x1 Conv: what a PyTorch model with its
    normalisation inside writes."""
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(c, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(c, 1, 1)
    w = np.random.default_rng(2).normal(size=(2, c, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Div", ["x", "k255"], ["unit"], name="scale/Div"),
             helper.make_node("Sub", ["unit", "mean"], ["centred"], name="norm/Sub"),
             helper.make_node("Div", ["centred", "std"], ["normed"], name="norm/Div"),
             helper.make_node("Conv", ["normed", "w"], ["y"], name="conv/Conv")]
    inits = {"k255": np.array(255.0, np.float32), "mean": mean, "std": std, "w": w}
    return make_model(nodes, {"x": ["N", c, 4, 5]}, ["y"], inits)


def test_torchvision_normalisation_imports_as_rescaling_and_normalization(tmp_path):
    path = save_model(_torchvision_style(), tmp_path / "tv.onnx")
    graph = cnnc.load_spec(path)
    assert _ops(graph) == ["input", "rescaling", "normalization", "conv2d"]
    norm = next(n for n in graph.nodes if n.op == "normalization")
    np.testing.assert_allclose(np.sqrt(norm.attrs["variance"]), [0.229, 0.224, 0.225],
                               rtol=1e-6)
    x = np.random.default_rng(3).uniform(0, 255, (2, 3, 4, 5)).astype(np.float32)
    (want,) = ort_outputs(path, {"x": x})
    got = cnnc.compile(graph, backend="numpy").predict(nhwc(x))
    assert relative_error(got, nhwc(want)) <= RTOL
    assert not any(s.trainable for s in graph.weights if s.name.startswith(norm.name))


def test_constants_on_a_computed_map_stay_an_affine_layer(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Sub", ["r", "mean"], ["y"])]
    path = save_model(make_model(nodes, {"x": ["N", 2, 3, 3]}, ["y"],
                                 {"mean": np.ones((2, 1, 1), np.float32)}), tmp_path / "a.onnx")
    assert "normalization" not in _ops(cnnc.load_spec(path))
