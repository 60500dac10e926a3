"""The graph forms PyTorch's dynamo exporter (opset 18 and on) and tf2onnx write, built with
onnx.helper and imported against onnxruntime: ReduceMean with axes as an input and
noop_with_empty_axes, shape chains folded, Constant in every form, Identity, one-input Concat,
Cast, shared and transposed weights, local functions, tf2onnx's NHWC transposes; and the
clear refusals (casts to other types, folding past its bound, functions that recurse)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_helpers import check_against_ort, make_model, ort_outputs, randn, save

import cnnc
from cnnc.errors import CnncError
from cnnc.ir.ops import OPS

N = "N"
OPSETS = (18, 19, 20, 21)


def i64(*values):
    return np.array(values, dtype=np.int64)


def conv_relu(src="x", dst="r", w="W"):
    return [helper.make_node("Conv", [src, w, "B"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], [dst])]


CONV = {"W": randn(4, 3, 3, 3, seed=1, scale=0.3), "B": randn(4, seed=2, scale=0.1)}


def head(src, features, dst="y"):
    return ([helper.make_node("Gemm", [src, "G", "GB"], [dst], transB=1)],
            {"G": randn(5, features, seed=3, scale=0.2), "GB": randn(5, seed=4)})


def dynamo_pool_head(keepdims=1):
    """What the dynamo exporter writes for AdaptiveAvgPool2d(1) + flatten + Linear: ReduceMean
    with axes [-1, -2] as an input, then a Reshape to [batch, -1] built by a shape chain."""
    nodes = [*conv_relu(),
             helper.make_node("ReduceMean", ["r", "axes"], ["m"], keepdims=keepdims,
                              noop_with_empty_axes=0),
             helper.make_node("Shape", ["m"], ["s"], start=0, end=1),
             helper.make_node("Constant", [], ["minus1"], value_ints=[-1]),
             helper.make_node("Concat", ["s", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["m", "target"], ["f"], allowzero=0)]
    gemm, weights = head("f", 4)
    return nodes + gemm, {**CONV, "axes": i64(-1, -2), **weights}


def _run(tmp_path, nodes, inits, x_shape=(N, 3, 8, 8), opset=18, batch=3, **kw):
    path = save(make_model(nodes, {"x": x_shape}, ["y"], inits, opset=opset), tmp_path / "m.onnx")
    shape = [batch if d == N else d for d in x_shape]
    return check_against_ort(path, randn(*shape, seed=9), **kw)


@pytest.mark.parametrize("opset", OPSETS)
def test_dynamo_global_pool_head_at_every_opset(opset, tmp_path):
    nodes, inits = dynamo_pool_head()
    g = _run(tmp_path, nodes, inits, opset=opset)
    assert [n.op for n in g.nodes] == ["input", "conv2d", "global_avgpool2d", "flatten",
                                       "dense"]


def test_reduce_mean_without_keepdims_and_a_fixed_batch(tmp_path):
    nodes = [*conv_relu(),
             helper.make_node("ReduceMean", ["r", "axes"], ["m"], keepdims=0),
             helper.make_node("Reshape", ["m", "shape"], ["f"])]
    gemm, weights = head("f", 4)
    g = _run(tmp_path, nodes + gemm, {**CONV, "axes": i64(2, 3), "shape": i64(2, 4),
                                      **weights}, x_shape=(2, 3, 8, 8), batch=2)
    assert [n.op for n in g.nodes] == ["input", "conv2d", "global_avgpool2d", "dense"]


def test_reduce_with_no_axes_and_noop_is_the_identity(tmp_path):
    nodes = [*conv_relu(), helper.make_node("ReduceMean", ["r"], ["y"], noop_with_empty_axes=1)]
    g = _run(tmp_path, nodes, CONV)
    assert [n.op for n in g.nodes] == ["input", "conv2d"]


@pytest.mark.xfail("global_maxpool2d" not in OPS, strict=True,
                   reason="needs global_maxpool2d (issue 20 part 4)")
def test_reduce_max_over_the_spatial_axes_is_global_max_pooling(tmp_path):
    nodes = [*conv_relu(), helper.make_node("ReduceMax", ["r", "axes"], ["y"], keepdims=1)]
    g = _run(tmp_path, nodes, {**CONV, "axes": i64(2, 3)})
    assert g.nodes[-1].op == "global_maxpool2d"


@pytest.mark.parametrize(("nodes", "inits", "needle"), [
    ([helper.make_node("ReduceMean", ["x"], ["y"], name="rm")], {},
     "axes=none (every axis)"),
    ([helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="rm")], {"axes": i64(1)},
     "axes=(1,)"),
    ([helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="rm")], {"axes": i64(4)},
     "out of range"),
])
def test_reductions_cnnc_cannot_do_are_refused(nodes, inits, needle, tmp_path):
    path = save(make_model(nodes, {"x": (N, 3, 8, 8)}, ["y"], inits, opset=18),
                tmp_path / "m.onnx")
    with pytest.raises(CnncError) as info:
        cnnc.load_spec(path)
    text = info.value.render()
    assert "node 'rm' (ReduceMean)" in text and needle in text, text


def test_a_shape_chain_with_arithmetic_folds_into_a_flatten(tmp_path):
    """TorchScript's x.view(x.size(0), -1) and the dynamo exporter's sym_size arithmetic:
    Shape -> Gather -> Unsqueeze, C*H*W computed by Mul on gathered dims, Cast, Concat."""
    nodes = [*conv_relu(),
             helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
             helper.make_node("Slice", ["s", "ax1", "four"], ["chw"]),
             helper.make_node("Gather", ["chw", "zero"], ["ch0"], axis=0),
             helper.make_node("Gather", ["chw", "one"], ["h"], axis=0),
             helper.make_node("Gather", ["chw", "two"], ["w"], axis=0),
             helper.make_node("Mul", ["ch0", "h"], ["ch"]),
             helper.make_node("Mul", ["ch", "w"], ["features"]),
             helper.make_node("Cast", ["features"], ["features_i"], to=TensorProto.INT64),
             helper.make_node("Unsqueeze", ["features_i", "ax0"], ["f1"]),
             helper.make_node("Concat", ["n1", "f1"], ["target"], axis=0),
             helper.make_node("Reshape", ["r", "target"], ["f"])]
    gemm, weights = head("f", 4 * 8 * 8)
    inits = {**CONV, "zero": np.array(0, np.int64), "one": np.array(1, np.int64),
             "two": np.array(2, np.int64), "ax0": i64(0), "ax1": i64(1), "four": i64(4),
             **weights}
    g = _run(tmp_path, nodes + gemm, inits)
    assert [n.op for n in g.nodes] == ["input", "conv2d", "flatten", "dense"]


def test_constant_nodes_in_every_form(tmp_path):
    """value (a tensor), value_float, value_floats, value_int, value_ints; Identity of a
    constant; Cast of a constant."""
    nodes = [
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(CONV["W"])),
        helper.make_node("Identity", ["w"], ["w2"]),
        helper.make_node("Constant", [], ["b"], value_floats=CONV["B"].tolist()),
        helper.make_node("Conv", ["x", "w2", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["lo"], value_float=0.0),
        helper.make_node("Constant", [], ["hi_i"], value_int=6),
        helper.make_node("Cast", ["hi_i"], ["hi"], to=TensorProto.FLOAT),
        helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    g = _run(tmp_path, nodes, {})
    assert [(n.op, n.attrs.get("activation")) for n in g.nodes] == [("input", None),
                                                                     ("conv2d", "relu6")]


def test_identity_one_input_concat_and_float_cast_pass_computed_tensors_through(tmp_path):
    nodes = [*conv_relu(),
             helper.make_node("Identity", ["r"], ["i"]),
             helper.make_node("Concat", ["i"], ["k"], axis=1),
             helper.make_node("Cast", ["k"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Conv", ["f", "W2"], ["y"])]
    g = _run(tmp_path, nodes, {**CONV, "W2": randn(2, 4, 1, 1, seed=5)})
    assert [n.op for n in g.nodes] == ["input", "conv2d", "conv2d"]


def test_a_cast_of_a_computed_tensor_to_another_type_is_refused(tmp_path):
    nodes = [helper.make_node("Cast", ["x"], ["h"], name="half", to=TensorProto.FLOAT16),
             helper.make_node("Cast", ["h"], ["y"], to=TensorProto.FLOAT)]
    path = save(make_model(nodes, {"x": (N, 3, 4, 4)}, ["y"], {}, opset=18),
                tmp_path / "m.onnx")
    with pytest.raises(CnncError) as info:
        cnnc.load_spec(path)
    assert "node 'half' (Cast): to=float16" in info.value.render()


def test_flatten_or_reshape_minus_one_gemm_or_matmul_add_shared_and_transposed_weights(
        tmp_path):
    """Two branches reading one initialiser by name, one through a Transpose of the HWIO
    weight (tf2onnx), one directly; Flatten + Gemm and Reshape(-1) + MatMul + Add heads."""
    hwio = CONV["W"].transpose(2, 3, 1, 0).copy()
    nodes = [helper.make_node("Transpose", ["Whwio"], ["Wt"], perm=[3, 2, 0, 1]),
             helper.make_node("Conv", ["x", "Wt", "B"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "W", "B"], ["b"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["a", "b"], ["s"]),
             helper.make_node("GlobalAveragePool", ["s"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f1"], axis=1),
             helper.make_node("Reshape", ["p", "m1"], ["f2"]),
             helper.make_node("Gemm", ["f1", "G", "GB"], ["g1"], transB=1),
             helper.make_node("MatMul", ["f2", "M"], ["g2"]),
             helper.make_node("Add", ["g2", "GB"], ["g3"]),
             helper.make_node("Add", ["g1", "g3"], ["y"])]
    inits = {**CONV, "Whwio": hwio, "m1": i64(0, -1), "G": randn(5, 4, seed=6),
             "M": randn(4, 5, seed=7), "GB": randn(5, seed=8)}
    g = _run(tmp_path, nodes, inits, opset=20)
    assert [n.op for n in g.nodes].count("dense") == 2


def test_local_functions_are_inlined(tmp_path):
    """An exporter may write a module as a model-local function: it is inlined, then lowered
    like the rest."""
    body = helper.make_function(
        "pkg.model", "ConvRelu", ["inp", "w", "b"], ["out"],
        [helper.make_node("Conv", ["inp", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["out"])],
        [helper.make_opsetid("", 18)])
    graph = helper.make_graph(
        [helper.make_node("ConvRelu", ["x", "W", "B"], ["y"], domain="pkg.model")], "f",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in CONV.items()])
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("pkg.model", 1)]
    model = helper.make_model(graph, opset_imports=opsets, functions=[body], ir_version=9)
    path = save(model, tmp_path / "f.onnx")
    g = check_against_ort(path, randn(2, 3, 8, 8, seed=1))
    assert [(n.op, n.attrs.get("activation")) for n in g.nodes] == [("input", None),
                                                                     ("conv2d", "relu")]


def test_functions_that_call_themselves_are_refused(tmp_path):
    body = helper.make_function("pkg", "Loop", ["a"], ["b"],
                                [helper.make_node("Loop", ["a"], ["b"], domain="pkg")],
                                [helper.make_opsetid("", 18)])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["x"], ["y"], domain="pkg")], "f",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("pkg", 1)],
                              functions=[body], ir_version=9)
    with pytest.raises(CnncError) as info:
        cnnc.load_spec(save(model, tmp_path / "loop.onnx"))
    assert "call themselves: pkg.Loop -> pkg.Loop" in info.value.render()


def test_folding_stays_bounded(tmp_path):
    nodes = [helper.make_node("ConstantOfShape", ["dims"], ["big"], name="huge"),
             helper.make_node("Shape", ["big"], ["s"]),
             helper.make_node("Reshape", ["x", "s"], ["y"])]
    path = save(make_model(nodes, {"x": (N, 3)}, ["y"], {"dims": i64(16385, 16385)}, opset=18),
                tmp_path / "m.onnx")
    with pytest.raises(CnncError) as info:
        cnnc.load_spec(path)
    text = info.value.render()
    assert "node 'huge' (ConstantOfShape)" in text and "268,435,456" in text, text


def test_tf2onnx_nhwc_form(tmp_path):
    """tf2onnx's Keras model: an NHWC input transposed to NCHW, Conv with its Relu, a
    Transpose back to NHWC, ReduceMean over axes [1, 2] (GlobalAveragePooling2D), then
    MatMul + Add; names as tf2onnx writes them."""
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2],
                              name="model/conv2d/Conv2D__6"),
             helper.make_node("Conv", ["xt", "W", "B"], ["c"], pads=[1, 1, 1, 1],
                              name="model/conv2d/Conv2D"),
             helper.make_node("Relu", ["c"], ["r"], name="model/conv2d/Relu"),
             helper.make_node("Transpose", ["r"], ["rt"], perm=[0, 2, 3, 1],
                              name="model/conv2d/Relu__8"),
             helper.make_node("ReduceMean", ["rt", "axes"], ["m"], keepdims=0,
                              name="model/global_average_pooling2d/Mean"),
             helper.make_node("MatMul", ["m", "M"], ["d"], name="model/dense/MatMul"),
             helper.make_node("Add", ["d", "MB"], ["y"], name="model/dense/BiasAdd")]
    inits = {**CONV, "axes": i64(1, 2), "M": randn(4, 5, seed=3), "MB": randn(5, seed=4)}
    path = save(make_model(nodes, {"x": (N, 8, 8, 3)}, ["y"], inits, opset=18),
                tmp_path / "tf.onnx")
    g = check_against_ort(path, randn(3, 8, 8, 3, seed=5), input_layout="nhwc")
    assert [(n.name, n.op) for n in g.nodes] == [
        ("x", "input"), ("model.conv2d", "conv2d"),
        ("model.global_average_pooling2d", "global_avgpool2d"), ("model.dense", "dense")]
    assert g.node("model.conv2d").attrs["activation"] == "relu"


def test_tf2onnx_nhwc_output_keeps_its_layout(tmp_path):
    """A 4-D NHWC output (tf2onnx transposes back before it): cnnc's own NHWC output."""
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["xt", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["c"], ["y"], perm=[0, 2, 3, 1])]
    path = save(make_model(nodes, {"x": (N, 8, 8, 3)}, ["y"], CONV, opset=18),
                tmp_path / "tf.onnx")
    x = randn(2, 8, 8, 3, seed=6)
    (want,) = ort_outputs(path, {"x": x})
    got = cnnc.compile(cnnc.load_spec(path), backend="numpy").predict(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def _as_strided_model(indices):
    """The dynamo exporter's as_strided on a pooled (2, 4, 1, 1) tensor: a Reshape to [-1] of
    the whole tensor, batch included, then a Gather of constant indices (fixed batch 2)."""
    nodes = [*conv_relu(),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Reshape", ["p", "flat"], ["f"]),
             helper.make_node("Gather", ["f", "idx"], ["g"], axis=0, name="as_strided"),
             helper.make_node("Flatten", ["g"], ["v"])]
    gemm, weights = head("v", 4)
    return nodes + gemm, {**CONV, "flat": i64(-1), "idx": indices, **weights}


def test_as_strided_put_back_in_place(tmp_path):
    nodes, inits = _as_strided_model(np.arange(8, dtype=np.int64).reshape(2, 4, 1, 1))
    g = _run(tmp_path, nodes, inits, x_shape=(2, 3, 8, 8), batch=2)
    assert [n.op for n in g.nodes] == ["input", "conv2d", "global_avgpool2d", "flatten",
                                       "dense"]


def test_as_strided_that_mixes_samples_is_refused(tmp_path):
    nodes, inits = _as_strided_model(np.arange(8, dtype=np.int64)[::-1].reshape(2, 4, 1, 1)
                                     .copy())
    path = save(make_model(nodes, {"x": (2, 3, 8, 8)}, ["y"], inits, opset=18),
                tmp_path / "m.onnx")
    with pytest.raises(CnncError) as info:
        cnnc.load_spec(path)
    text = info.value.render()
    assert "node 'as_strided' (Gather)" in text and "back in place" in text, text


def test_linear_layers_on_a_channels_last_tensor(tmp_path):
    """ConvNeXt's inverted bottleneck as both exporters write it: a permute to channels-last,
    MatMul + Add (Linear) to 4x the width, an activation, MatMul + Add back, a permute to
    NCHW and the residual: dense layers over cnnc's channel axis, no transposes."""
    nodes = [*conv_relu(),
             helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("MatMul", ["t", "M1"], ["m1"]),
             helper.make_node("Add", ["m1", "b1"], ["a1"]),
             helper.make_node("Relu", ["a1"], ["h"]),
             helper.make_node("MatMul", ["h", "M2"], ["m2"]),
             helper.make_node("Add", ["m2", "b2"], ["a2"]),
             helper.make_node("Transpose", ["a2"], ["back"], perm=[0, 3, 1, 2]),
             helper.make_node("Add", ["back", "r"], ["y"])]
    inits = {**CONV, "M1": randn(4, 16, seed=3), "b1": randn(16, seed=4),
             "M2": randn(16, 4, seed=5), "b2": randn(4, seed=6)}
    g = _run(tmp_path, nodes, inits, opset=18)
    assert [(n.op, n.attrs.get("use_bias"), n.attrs.get("activation")) for n in g.nodes] == [
        ("input", None, None), ("conv2d", True, "relu"), ("dense", True, "relu"),
        ("dense", True, "linear"), ("add", None, None)]
