"""ONNX export and import of the broadcasting merges, reshape and constant arithmetic
(cnnc/export/onnx_export.py, cnnc/frontend/onnx_arith.py): onnx.checker and onnxruntime are the
oracles; the round trip gives back an equal graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx_helpers import (
    RTOL,
    check_against_ort,
    make_model,
    nhwc,
    ort_outputs,
    randn,
    relative_error,
    save,
)

import cnnc
from cnnc.errors import SpecError

# A squeeze-excite block twice (a Keras one: GAP -> Reshape((1, 1, C)) -> Dense -> Dense ->
# Multiply, and one of 1x1 convolutions on a keepdims GAP), then every merge with broadcasts.
MERGES = """
network merges
input 6x5x4
x: conv2d 4 3 same tanh
sq: global_avgpool2d(x)
r: reshape (1, 1, 4)
fc: dense 2 relu
gate: dense 4 sigmoid
se: multiply(x, gate)
sq2: global_avgpool2d(se) keepdims=true
c1: conv2d 2 1 relu
gate2: conv2d 4 1 sigmoid
se2: multiply(se, gate2, gate)
vec: dense(sq) 4
v: reshape (1, 1, 4)
sub: subtract(se2, v)
mx: maximum(sub, gate2, x)
mn: minimum(gate, mx)
avg: average(mn, v, x)
flat_gate: reshape(gate) target_shape=(-1,)
back: reshape target_shape=(1, 1, -1)
sum: add(avg, back)
conv2d 3 3
"""

# Merges of a (C,) vector with maps (NumPy's trailing-axis rule): the export reshapes the
# vector to NCHW (N, C, 1, 1), which comes back as a reshape layer before the merge.
MIXED_RANKS = """
network mixed
input 6x5x4
x: conv2d 4 3 same tanh
sq: global_avgpool2d(x)
vec: dense 4
sub: subtract(x, vec)
mx: maximum(vec, sub)
avg: average(mx, vec, x)
mul: multiply(avg, vec)
add(mul, vec)
"""


def _trained(graph, seed=3):
    model = cnnc.compile(graph, backend="numpy")
    rng = np.random.default_rng(seed)
    weights = {k: (v + rng.uniform(-0.3, 0.3, v.shape)).astype(np.float32)
               for k, v in model.get_weights().items()}
    model.set_weights(weights)
    return model


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_merges_and_reshape_round_trip_and_match_onnxruntime(layout, tmp_path):
    graph = cnnc.load_spec(MERGES)
    model = _trained(graph)
    path = tmp_path / "merges.onnx"
    model.export_onnx(str(path), layout=layout)
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    ops = {n.op_type for n in loaded.graph.node}
    assert {"Mul", "Sub", "Max", "Min", "Mean", "Add", "Reshape"} <= ops
    back = cnnc.load_spec(path)
    assert back == graph
    x = np.random.default_rng(0).random((3, 6, 5, 4), dtype=np.float32)
    np.testing.assert_array_equal(cnnc.compile(back, backend="numpy").predict(x), model.predict(x))
    feed = x.transpose(0, 3, 1, 2) if layout == "nchw" else x
    (want,) = ort_outputs(path, {graph.inputs[0]: feed})
    got = model.predict(x)
    assert relative_error(got, nhwc(want) if layout == "nchw" else want) <= RTOL


def test_merges_of_a_vector_and_maps_match_onnxruntime(tmp_path):
    graph = cnnc.load_spec(MIXED_RANKS)
    model = _trained(graph)
    path = tmp_path / "mixed.onnx"
    model.export_onnx(str(path))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = np.random.default_rng(0).random((3, 6, 5, 4), dtype=np.float32)
    (want,) = ort_outputs(path, {graph.inputs[0]: x.transpose(0, 3, 1, 2)})
    assert relative_error(model.predict(x), nhwc(want)) <= RTOL
    back = cnnc.load_spec(path)
    assert sum(n.op == "reshape" for n in back.nodes) == 5  # one per vector operand
    np.testing.assert_allclose(cnnc.compile(back, backend="numpy").predict(x), model.predict(x),
                               rtol=1e-6)


# ---- import of hand-built models


def _model(nodes, inits, shape=("N", 3, 5, 4)):
    return make_model(nodes, {"x": shape}, ["y"], inits)


def _se_model():
    c, r = 4, 2
    return _model([
        helper.make_node("Conv", ["x", "w0"], ["f"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["f"], ["p"], name="squeeze"),
        helper.make_node("Conv", ["p", "w1", "b1"], ["h"], name="reduce"),
        helper.make_node("Relu", ["h"], ["hr"], name="relu"),
        helper.make_node("Conv", ["hr", "w2", "b2"], ["g"], name="expand"),
        helper.make_node("Sigmoid", ["g"], ["gs"], name="gate"),
        helper.make_node("Mul", ["f", "gs"], ["y"], name="excite"),
    ], {"w0": randn(c, 3, 3, 3, seed=1), "w1": randn(r, c, 1, 1, seed=2),
        "b1": randn(r, seed=3), "w2": randn(c, r, 1, 1, seed=4), "b2": randn(c, seed=5)})


def test_an_se_block_imports_as_multiply_of_a_broadcast_gate(tmp_path, backend):
    path = save(_se_model(), tmp_path / "se.onnx")
    graph = check_against_ort(path, randn(2, 3, 5, 4, seed=9), backend=backend)
    excite = graph.node("excite")
    assert excite.op == "multiply" and excite.shape == (None, 5, 4, 4)
    assert graph.shape_of(excite.inputs[1]) == (None, 1, 1, 4)


def test_input_normalisation_and_batch_norm_written_out_become_one_affine_layer(tmp_path):
    mean = np.array([0.5, 0.4, 0.3], np.float32).reshape(3, 1, 1)
    std = np.array([0.2, 0.25, 0.3], np.float32).reshape(3, 1, 1)
    model = _model([
        helper.make_node("Sub", ["x", "mean"], ["centred"], name="centre"),
        helper.make_node("Div", ["centred", "std"], ["n"], name="scale"),
        helper.make_node("Conv", ["n", "w"], ["f"], name="conv"),
        helper.make_node("Mul", ["f", "gamma"], ["fg"], name="bn_mul"),   # BN written out
        helper.make_node("Add", ["fg", "beta"], ["fb"], name="bn_add"),
        helper.make_node("Relu", ["fb"], ["fr"], name="relu"),
        helper.make_node("Mul", ["fr", "two"], ["f2"], name="double"),     # scalar constants
        helper.make_node("Sub", ["one", "f2"], ["y"], name="flip"),
    ], {"mean": mean, "std": std, "w": randn(4, 3, 3, 3, seed=1),
        "gamma": randn(1, 4, 1, 1, seed=2), "beta": randn(4, 1, 1, seed=3),
        "two": np.array(2.0, np.float32), "one": np.array([1.0], np.float32)})
    path = save(model, tmp_path / "norm.onnx")
    graph = check_against_ort(path, randn(2, 3, 5, 4, seed=9))
    ops = [n.op for n in graph.nodes]
    # centre+scale: one layer (on the graph input: the preprocessing layer normalization, of
    # constant statistics); bn_mul+bn_add: one; double+flip: one (after the relu)
    assert ops == ["input", "normalization", "conv2d", "depthwise_conv2d", "activation",
                   "depthwise_conv2d"], ops


@pytest.mark.parametrize("op,cnnc_op", [("Max", "maximum"), ("Min", "minimum"),
                                        ("Mean", "average"), ("Sub", "subtract"),
                                        ("Add", "add"), ("Sum", "add")])
def test_merges_of_computed_tensors_broadcast_nchw_gates(op, cnnc_op, tmp_path):
    model = _model([
        helper.make_node("Conv", ["x", "w"], ["f"], name="conv"),
        helper.make_node("GlobalAveragePool", ["f"], ["g"], name="pool"),
        helper.make_node("Tanh", ["f"], ["t"], name="tanh"),
        helper.make_node(op, ["g", "t", "f"] if op in ("Max", "Min", "Mean", "Sum")
                         else ["t", "g"], ["y"], name="merge"),
    ], {"w": randn(4, 3, 1, 1, seed=1)})
    graph = check_against_ort(save(model, tmp_path / "m.onnx"), randn(2, 3, 5, 4, seed=9))
    assert graph.node("merge").op == cnnc_op


@pytest.mark.parametrize("nodes,inits,needles", [
    ([helper.make_node("Relu", ["x"], ["r"], name="r"),
      helper.make_node("Div", ["x", "r"], ["y"], name="ratio")], {},
     ["node 'ratio' (Div)", "no merge computing Div"]),
    ([helper.make_node("Mul", ["x", "c"], ["y"], name="scale")],
     {"c": np.ones((4,), np.float32)},
     ["node 'scale' (Mul)", "shape (4,)", "per-channel constant, of shape (3, 1, 1)"]),
    ([helper.make_node("Div", ["c", "x"], ["y"], name="inv")],
     {"c": np.ones((1,), np.float32)}, ["node 'inv' (Div)", "constant first"]),
    ([helper.make_node("GlobalAveragePool", ["x"], ["p"], name="p"),
      helper.make_node("Flatten", ["p"], ["v"], name="flat"),
      helper.make_node("Mul", ["x", "v"], ["y"], name="mix")], {},
     ["node 'mix' (Mul)", "different ranks"]),
])
def test_arithmetic_cnnc_cannot_lower_is_refused_by_node(nodes, inits, needles, tmp_path):
    path = save(_model(nodes, inits), tmp_path / "bad.onnx")
    with pytest.raises(SpecError) as info:
        cnnc.load_spec(path)
    text = info.value.render()
    for needle in needles:
        assert needle in text, text


def test_a_view_of_the_pooled_vector_as_nchw_becomes_reshape(tmp_path):
    model = _model([
        helper.make_node("GlobalAveragePool", ["x"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["v"], name="flat"),
        helper.make_node("Gemm", ["v", "w"], ["d"], name="fc", transB=1),
        helper.make_node("Sigmoid", ["d"], ["s"], name="sig"),
        helper.make_node("Reshape", ["s", "shape"], ["g"], name="view"),
        helper.make_node("Mul", ["x", "g"], ["y"], name="excite"),
    ], {"w": randn(3, 3, seed=1), "shape": np.array([-1, 3, 1, 1], np.int64)})
    graph = check_against_ort(save(model, tmp_path / "v.onnx"), randn(2, 3, 5, 4, seed=9))
    assert graph.node("view").op == "reshape"
    assert graph.node("view").attrs["target_shape"] == (1, 1, 3)
