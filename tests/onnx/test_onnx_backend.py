"""cnnc.onnx_backend: ONNX's Backend interface, layouts mapped at the boundary, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx.backend.base import Backend, BackendRep
from onnx_helpers import make_model, ort_outputs, randn, relative_error, save

import cnnc.onnx_backend as backend
from cnnc.errors import CnncError


def _conv_model(weights_as_inputs: bool = False):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 0, 1, 2], strides=[1, 2]),
             helper.make_node("Relu", ["c"], ["y"])]
    w = randn(4, 3, 3, 3, seed=1)
    if weights_as_inputs:
        return make_model(nodes, {"x": (2, 3, 6, 7), "w": w.shape}, ["y"]), w
    return make_model(nodes, {"x": ("N", 3, 6, 7)}, ["y"], {"w": w}), w


def test_it_is_an_onnx_backend():
    assert issubclass(backend.CnncBackend, Backend)
    assert issubclass(backend.CnncBackendRep, BackendRep)
    assert backend.supports_device("CPU")
    assert not backend.supports_device("CUDA")


def test_nchw_in_nchw_out_matches_onnxruntime(tmp_path):
    """The runner's NCHW input goes in as given and the NCHW output comes back, as ONNX
    computes it (an asymmetric pad and stride make a transposed layout visible)."""
    model, _ = _conv_model()
    x = randn(2, 3, 6, 7, seed=2)
    (want,) = ort_outputs(save(model, tmp_path / "m.onnx"), {"x": x})
    rep = backend.prepare(model, "CPU")
    (got,) = rep.run([x])
    assert got.shape == want.shape == (2, 4, 6, 4)
    assert relative_error(got, want) <= 1e-5
    (by_name,) = rep.run({"x": x})
    np.testing.assert_array_equal(by_name, got)


def test_weights_given_as_graph_inputs_are_bound_when_run(tmp_path):
    """ONNX's node cases pass a Conv's W as an input: bound as a constant with run()'s value,
    and compiled again for another value."""
    model, w = _conv_model(weights_as_inputs=True)
    x = randn(2, 3, 6, 7, seed=3)
    rep = backend.prepare(model, "CPU")
    for weights in (w, 2 * w):
        (want,) = ort_outputs(save(model, tmp_path / "m.onnx"), {"x": x, "w": weights})
        (got,) = rep.run([x, weights])
        assert relative_error(got, want) <= 1e-5


def test_run_node():
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    x = randn(1, 2, 4, 4, seed=4)
    (got,) = backend.run_node(node, [x])
    want = x.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5))  # 2x2 blocks, by hand
    np.testing.assert_array_equal(got, want)


def test_what_cnnc_cannot_model_is_refused_with_the_importer_reason():
    """A 3-D (batch, channels, length) input to an operator that reads an axis: the runner
    records the failure, with why (an element-wise graph would be folded; this one is not)."""
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    model = make_model([node], {"x": (3, 4, 5)}, ["y"])
    with pytest.raises(CnncError, match=r"(?s)input 0 \('x'\) is a constant.*bound as "
                                        r"constants: x; cnnc's data inputs are float32"):
        backend.prepare(model, "CPU").run([randn(3, 4, 5)])


def _elementwise_model():
    """y = sigmoid(a * b + c) - a with ONNX's broadcasts: a (2, 3, 1, 4, 5), b (2, 3, 1, 1, 5),
    c (4, 1); three runs of axes: 2*3 (a, b whole), 4 (a, c whole), 5 (a, b whole)."""
    nodes = [helper.make_node("Mul", ["a", "b"], ["ab"]),
             helper.make_node("Add", ["ab", "c"], ["s"]),
             helper.make_node("Sigmoid", ["s"], ["g"]),
             helper.make_node("Sub", ["g", "a"], ["y"])]
    shapes = {"a": (2, 3, 1, 4, 5), "b": (2, 3, 1, 1, 5), "c": (4, 1)}
    return make_model(nodes, shapes, ["y"]), shapes


@pytest.mark.parametrize("device", ["CPU", "OPENCL"])
def test_an_elementwise_graph_of_any_rank_runs_folded(device, request):
    """5-D and 2-D operands broadcast as ONNX does, computed by cnnc's layers on a folded
    4-D view and returned in the ONNX shape; checked against the formula in NumPy."""
    if device == "OPENCL":
        request.getfixturevalue("opencl_device")  # skips, saying why, without a device
    model, shapes = _elementwise_model()
    a, b, c = (randn(*shapes[n], seed=i) for i, n in enumerate("abc"))
    rep = backend.prepare(model, device)
    assert rep._fold is not None and rep._fold.inputs["b"] == (1, 6, 1, 5)
    (got,) = rep.run([a, b, c])
    want = 1 / (1 + np.exp(-(a * b + c))) - a
    assert got.shape == want.shape == (2, 3, 1, 4, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(CnncError, match=r"input 'a' has shape \(2, 3, 4, 5\); the model "
                                        r"declares \(2, 3, 1, 4, 5\)"):
        rep.run([a.reshape(2, 3, 4, 5), b, c])


def test_gelu_without_approximate_is_the_exact_gelu():
    """ONNX's default approximate='none' (a bytes default in onnx's schema) is cnnc's gelu: it
    was refused as "approximate=b'none'"; checked by hand with erf, on a 1-D vector."""
    from math import erf, sqrt

    node = helper.make_node("Gelu", ["x"], ["y"])
    x = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0], dtype=np.float32)
    (got,) = backend.run_node(node, [x])
    want = [v * 0.5 * (1 + erf(v / sqrt(2))) for v in x.tolist()]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,)])
def test_hard_sigmoid_with_onnx_constants(shape):
    """ONNX's HardSigmoid alpha, beta (not Keras' 1/6, 1/2): clip(alpha x + beta, 0, 1) by
    hand, on a 4-D tensor as given and a 1-D one folded."""
    node = helper.make_node("HardSigmoid", ["x"], ["y"], alpha=0.5, beta=0.625)
    x = randn(*shape, seed=6, scale=2.0)
    (got,) = backend.run_node(node, [x])
    np.testing.assert_allclose(got, np.clip(0.5 * x + 0.625, 0, 1), rtol=1e-6, atol=1e-7)


def test_broadcasts_that_do_not_fold_are_refused():
    """Alternating broadcast axes need five folded axes: the graph goes to the importer as it
    is, which refuses its 5-D operands."""
    node = helper.make_node("Add", ["a", "b"], ["y"])
    model = make_model([node], {"a": (2, 1, 2, 1, 2), "b": (1, 2, 1, 2, 1)}, ["y"])
    rep = backend.prepare(model, "CPU")
    assert rep._fold is None
    with pytest.raises(CnncError, match="bound as constants: a, b"):
        rep.run([randn(2, 1, 2, 1, 2), randn(1, 2, 1, 2, 1)])


def test_devices_are_checked():
    model, _ = _conv_model()
    with pytest.raises(CnncError, match="'CUDA' is not one cnnc runs on"):
        backend.prepare(model, "CUDA")
    with pytest.raises(CnncError, match="unknown keyword"):
        backend.prepare(model, "CPU", fast=True)


def test_opencl_device(opencl_device):
    model, _ = _conv_model()
    x = randn(2, 3, 6, 7, seed=5)
    (want,) = backend.prepare(model, "CPU").run([x])
    (got,) = backend.prepare(model, "OPENCL").run([x])
    assert relative_error(got, want) <= 1e-5
    (same,) = backend.OpenCLBackend.prepare(model, "CPU").run([x])
    np.testing.assert_array_equal(same, got)
