"""Each supported ONNX operator, in small models built with onnx.helper, imported and run in
cnnc's NumPy backend against onnxruntime: padding, stride, dilation, group and pooling
variants, and each attribute's edge values. Models that cnnc cannot lower exactly are refused
with the attribute named."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from onnx import helper
from onnx_helpers import check_against_ort, make_model, randn, save

import cnnc
from cnnc.errors import SpecError

N = "N"
X = (N, 3, 8, 8)  # NCHW input of most cases: even sizes, where TF 'same' pads bottom/right
XODD = (N, 3, 7, 9)


def conv(name="conv", src="x", dst="y", w="W", b="B", **attrs):
    inputs = [src, w] + ([b] if b else [])
    return helper.make_node("Conv", inputs, [dst], name=name, **attrs)


def weights(f, c, kh, kw, bias=True, seed=1):
    out = {"W": randn(f, c, kh, kw, seed=seed, scale=0.3)}
    if bias:
        out["B"] = randn(f, seed=seed + 1, scale=0.1)
    return out


def single(node_or_nodes, x=X, inits=None, out="y", opset=17):
    """A model of these nodes from input 'x' (NCHW, of shape `x`) to output `out`."""
    nodes = node_or_nodes if isinstance(node_or_nodes, list) else [node_or_nodes]
    return make_model(nodes, {"x": x}, [out], inits or {}, opset=opset)


def dense_head(src, units=5, flat="flat"):
    """Flatten, then Gemm: the path where cnnc permutes the dense kernel's rows."""
    return [helper.make_node("Flatten", [src], [flat], name="flatten", axis=1),
            helper.make_node("Gemm", [flat, "G", "GB"], ["y"], name="fc", transB=1)]


def head_weights(features, units=5):
    return {"G": randn(units, features, seed=7, scale=0.2), "GB": randn(units, seed=8)}


@dataclass(frozen=True)
class Case:
    nodes: list
    inits: dict | None = None
    x: tuple = X
    opset: int = 17

    def model(self):
        return single(self.nodes, self.x, self.inits, opset=self.opset)


def node(op, inputs, name="", **attrs):
    return helper.make_node(op, inputs, ["y"], name=name, **attrs)


def relu_then(op, **attrs):
    return [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r"], ["y"], **attrs)]


CONV3 = weights(4, 3, 3, 3)
P1 = [1, 1, 1, 1]

CASES = {
    "conv_valid": Case([conv()], CONV3),
    "conv_pad1_same": Case([conv(pads=P1)], CONV3),
    "conv_pad1_stride2_even": Case([conv(pads=P1, strides=[2, 2])], CONV3),
    "conv_pad1_stride2_odd": Case([conv(pads=P1, strides=[2, 2])], CONV3, XODD),
    "conv_asymmetric_pads": Case([conv(pads=[0, 2, 1, 0])], weights(4, 3, 3, 2)),
    "conv_pads_beyond_the_kernel": Case([conv(pads=[3, 3, 3, 3])], weights(2, 3, 2, 2)),
    "conv_same_upper_stride2": Case([conv(auto_pad="SAME_UPPER", strides=[2, 2])], CONV3),
    "conv_same_lower_stride2": Case([conv(auto_pad="SAME_LOWER", strides=[2, 2])], CONV3),
    "conv_auto_valid_strides_3x2": Case([conv(auto_pad="VALID", strides=[3, 2])], CONV3, XODD),
    "conv_dilated": Case([conv(dilations=[2, 3], pads=[2, 3, 2, 3])], CONV3),
    "conv_groups": Case([conv(group=2, b=None, pads=P1)], {"W": randn(6, 2, 3, 3, seed=3)},
                        (N, 4, 6, 6)),
    "conv_depthwise": Case([conv(group=4, b=None, kernel_shape=[3, 3])],
                           {"W": randn(8, 1, 3, 3, seed=4)}, (N, 4, 6, 6)),
    "conv_1x1_no_bias_strides_2x1": Case([conv(b=None, strides=[2, 1])],
                                         weights(5, 3, 1, 1, bias=False), XODD),
    "conv_fixed_batch": Case([conv(pads=P1)], CONV3, (2, 3, 8, 8)),
    "maxpool_2x2": Case([node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2])],
                        x=XODD),
    "maxpool_3x3_s1_same": Case([node("MaxPool", ["x"], kernel_shape=[3, 3], pads=P1)]),
    "maxpool_ceil_mode": Case([node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2],
                                    ceil_mode=1)], x=XODD),
    "maxpool_pads_after_relu": Case(relu_then("MaxPool", kernel_shape=[3, 3], strides=[2, 2],
                                              pads=P1)),
    "maxpool_default_stride_1": Case([node("MaxPool", ["x"], kernel_shape=[2, 3])], x=XODD),
    "avgpool_exclude_pad_same": Case([node("AveragePool", ["x"], kernel_shape=[3, 3],
                                           pads=P1)]),
    "avgpool_include_pad": Case([node("AveragePool", ["x"], kernel_shape=[3, 3],
                                      strides=[2, 2], pads=P1, count_include_pad=1)]),
    "avgpool_same_upper_exclude": Case([node("AveragePool", ["x"], kernel_shape=[2, 2],
                                             strides=[2, 2], auto_pad="SAME_UPPER")], x=XODD),
    "global_avgpool_flatten_gemm": Case(
        [helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"), *dense_head("g")],
        head_weights(3)),
    "global_avgpool_keepdims": Case([node("GlobalAveragePool", ["x"])]),
    "reduce_mean_spatial": Case([node("ReduceMean", ["x"], axes=[2, 3], keepdims=0)],
                                opset=13),
    "conv_flatten_gemm": Case([conv(dst="c", pads=P1), *dense_head("c")],
                              {**CONV3, **head_weights(4 * 8 * 8)}),
    "gemm_alpha_beta": Case(
        [helper.make_node("Flatten", ["x"], ["f"]),
         node("Gemm", ["f", "G", "C"], alpha=0.5, beta=2.0)],
        {"G": randn(3 * 7 * 9, 4, seed=2), "C": randn(1, 4, seed=3)}, XODD),
    "gemm_without_c": Case([node("Gemm", ["x", "G"], transB=1)], {"G": randn(3, 6)}, (N, 6)),
    "matmul_add": Case([helper.make_node("MatMul", ["x", "M"], ["m"]), node("Add", ["m", "b"])],
                       {"M": randn(6, 4), "b": randn(4, seed=5)}, (N, 6)),
    "conv_then_add_bias": Case([conv(dst="c", b=None), node("Add", ["c", "cb"])],
                               {"W": randn(4, 3, 3, 3), "cb": randn(1, 4, 1, 1, seed=9)}),
    "activations": Case([
        conv(dst="c", pads=P1),
        helper.make_node("Relu", ["c"], ["a1"]),
        helper.make_node("Sigmoid", ["c"], ["a2"]),
        helper.make_node("Tanh", ["c"], ["a3"]),
        helper.make_node("Elu", ["c"], ["a4"], alpha=1.0),
        helper.make_node("LeakyRelu", ["c"], ["a5"], alpha=0.2),
        helper.make_node("Softmax", ["c"], ["a6"], axis=1),
        node("Sum", ["a1", "a2", "a3", "a4", "a5", "a6"])], CONV3),
    "relu6_leaky_and_capped_relu": Case([
        conv(dst="c", pads=P1),
        helper.make_node("Clip", ["c", "zero", "six"], ["a1"], name="/Clip"),
        helper.make_node("LeakyRelu", ["x"], ["a2"], name="leaky", alpha=0.1),
        helper.make_node("Clip", ["x", "zero", "cap"], ["a3"], name="capped"),
        helper.make_node("Concat", ["a2", "a3"], ["a23"], axis=1),
        helper.make_node("Conv", ["a23", "W2"], ["c2"], pads=P1),
        node("Add", ["a1", "c2"])],
        {**CONV3, "W2": randn(4, 6, 3, 3, seed=5), "zero": np.array(0, np.float32),
         "six": np.array(6, np.float32), "cap": np.array(0.5, np.float32)}),
    "thresholded_relu": Case([node("ThresholdedRelu", ["x"], alpha=0.25)]),
    "clip_as_relu": Case([
        helper.make_node("Constant", [], ["lo"], value=helper.make_tensor("lo", 1, [], [0.0])),
        node("Clip", ["x", "lo"])]),
    "softmax_2d_opset11": Case([node("Softmax", ["x"], axis=1)], x=(N, 7), opset=11),
    "batchnorm_4d": Case([node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3,
                               momentum=0.8)],
                         {"s": randn(3, seed=1), "b": randn(3, seed=2), "m": randn(3, seed=3),
                          "v": np.abs(randn(3, seed=4)) + 0.5}),
    "batchnorm_after_flatten": Case(
        [helper.make_node("Flatten", ["x"], ["f"]),
         helper.make_node("BatchNormalization", ["f", "s", "b", "m", "v"], ["n"]),
         node("Gemm", ["n", "G", "GB"], transB=1)],
        {"s": randn(48, seed=1), "b": randn(48, seed=2), "m": randn(48, seed=3),
         "v": np.abs(randn(48, seed=4)) + 0.5, **head_weights(48)}, (N, 3, 4, 4)),
    "dropout_identity": Case([helper.make_node("Dropout", ["x", "ratio"], ["d"]),
                              node("Identity", ["d"])], {"ratio": np.array(0.3, np.float32)}),
    "reshape_from_shape_subgraph": Case([
        conv(dst="c"),
        helper.make_node("Shape", ["c"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["c", "shape"], ["f"]),
        node("Gemm", ["f", "G", "GB"], transB=1)],
        {**CONV3, **head_weights(4 * 6 * 6), "zero": np.array(0, np.int64),
         "axes0": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}),
    "reshape_constant_minus1": Case(
        [helper.make_node("Reshape", ["x", "shape"], ["f"]),
         node("Gemm", ["f", "G", "GB"], transB=1)],
        {"shape": np.array([-1, 3 * 64], np.int64), **head_weights(3 * 64)}),
    "transpose_to_nhwc_then_flatten": Case([
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
        node("Flatten", ["t"])]),
    "add_sum_concat": Case([
        conv(name="a", dst="a", pads=P1),
        conv(name="b", dst="b", w="W2", b=None, pads=P1),
        helper.make_node("Add", ["a", "b"], ["s"]),
        node("Concat", ["s", "x", "a"], axis=1)], {**CONV3, "W2": randn(4, 3, 3, 3, seed=6)}),
    "pad_then_conv": Case([helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
                           conv(src="p")],
                          {"pads": np.array([0, 0, 1, 0, 0, 0, 2, 1], np.int64), **CONV3}),
    "constant_weights_transposed_and_cast": Case([
        helper.make_node("Transpose", ["Wt"], ["Wc"], perm=[3, 2, 0, 1]),
        helper.make_node("Cast", ["Bd"], ["Bc"], to=1),
        conv(w="Wc", b="Bc", pads=P1)],
        {"Wt": randn(3, 3, 3, 4, seed=11), "Bd": randn(4, seed=12).astype(np.float64)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_operator_matches_onnxruntime(case, tmp_path):
    c = CASES[case]
    path = save(c.model(), tmp_path / f"{case}.onnx")
    x = randn(2 if c.x[0] == N else c.x[0], *c.x[1:], seed=42)
    check_against_ort(path, x)


def test_pads_that_are_not_same_get_a_zero_padding_layer(tmp_path):
    path = save(CASES["conv_pad1_stride2_even"].model(), tmp_path / "m.onnx")
    g = cnnc.load_spec(path)
    assert [n.op for n in g.nodes] == ["input", "zero_padding2d", "conv2d"]
    assert g.node(g.nodes[1].name).attrs["padding"] == ((1, 0), (1, 0))  # last pad unused
    odd = cnnc.load_spec(save(CASES["conv_pad1_stride2_odd"].model(), tmp_path / "o.onnx"))
    assert [n.op for n in odd.nodes] == ["input", "conv2d"]
    assert odd.nodes[1].attrs["padding"] == "same"


def test_pytorch_style_flatten_permutes_the_dense_kernel(tmp_path):
    model = CASES["conv_flatten_gemm"].model()
    g = cnnc.load_spec(save(model, tmp_path / "m.onnx"))
    assert [n.op for n in g.nodes] == ["input", "conv2d", "flatten", "dense"]
    kernel = g.given_weights["fc/kernel"]  # rows in cnnc's (h, w, c) flatten order
    onnx_kernel = next(t for t in model.graph.initializer if t.name == "G")
    want = np.asarray(onnx_kernel.float_data or np.frombuffer(onnx_kernel.raw_data, np.float32)
                      ).reshape(5, 4 * 8 * 8).T  # rows in ONNX's (c, h, w) order
    np.testing.assert_array_equal(kernel.reshape(8, 8, 4, 5).transpose(2, 0, 1, 3)
                                  .reshape(-1, 5), want)


def test_fusions_give_keras_like_layers(tmp_path):
    g = cnnc.load_spec(save(CASES["matmul_add"].model(), tmp_path / "a.onnx"))
    assert [(n.op, n.attrs.get("use_bias")) for n in g.nodes] == [("input", None),
                                                                  ("dense", True)]
    g = cnnc.load_spec(save(CASES["global_avgpool_flatten_gemm"].model(), tmp_path / "b.onnx"))
    assert [n.op for n in g.nodes] == ["input", "global_avgpool2d", "dense"]
    assert g.node("gap").attrs["keepdims"] is False


def test_relu_family_maps_to_activations_and_relu_with_parameters(tmp_path):
    g = cnnc.load_spec(save(CASES["relu6_leaky_and_capped_relu"].model(), tmp_path / "r.onnx"))
    assert g.node("conv").attrs["activation"] == "relu6"  # Clip(0, 6) joins the conv
    leaky, capped = g.node("leaky"), g.node("capped")
    assert leaky.op == capped.op == "activation"
    assert leaky.attrs["activation"] == capped.attrs["activation"] == "relu"
    assert leaky.attrs["negative_slope"] == 0.1 and capped.attrs["max_value"] == 0.5
    (shifted,) = cnnc.load_spec(save(CASES["thresholded_relu"].model(), tmp_path / "t.onnx")
                                ).nodes[1:]
    assert shifted.op == "activation" and shifted.attrs["threshold"] == 0.25


def _refused(tmp_path, model, *needles):
    path = save(model, tmp_path / "bad.onnx")
    with pytest.raises(SpecError) as info:
        cnnc.load_spec(path)
    text = info.value.render()
    for needle in needles:
        assert needle in text, text
    return text


REFUSED = {
    "elu_alpha": (lambda: single(helper.make_node("Elu", ["x"], ["y"], name="e", alpha=0.5)),
                  ["node 'e' (Elu)", "alpha=0.5"]),
    "clip_range": (lambda: single(helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="c"),
                                  inits={"lo": np.array(-1, np.float32),
                                         "hi": np.array(1, np.float32)}),
                   ["node 'c' (Clip)", "min=-1.0, max=1.0"]),
    # Explicit and asymmetric pooling pads import (tests/onnx/test_onnx_pooling.py); a window
    # lying wholly in the padding has no cell to take a max or a mean of.
    "pool_window_in_padding": (lambda: single(helper.make_node(
        "MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], pads=[2, 0, 0, 0])),
        ["node 'mp' (MaxPool)", "pads=[2, 0, 0, 0]", "wholly in the padding"]),
    "conv_stride_and_dilation": (lambda: single(conv(name="cd", strides=[2, 2],
                                                     dilations=[2, 2]),
                                                inits=weights(2, 3, 3, 3)),
                                 ["node 'cd' (Conv)", "dilation_rate"]),
    "softmax_over_height": (lambda: single(helper.make_node("Softmax", ["x"], ["y"], name="s",
                                                            axis=2)),
                            ["node 's' (Softmax)", "axis=2"]),
    "reshape_not_flatten": (lambda: single(helper.make_node("Reshape", ["x", "shape"], ["y"],
                                                            name="r"),
                                           inits={"shape": np.array([0, 3, 64], np.int64)}),
                            ["node 'r' (Reshape)", "only flattening"]),
    "unknown_attribute": (lambda: single(helper.make_node("Relu", ["x"], ["y"], name="r",
                                                          extra=1)),
                          ["node 'r' (Relu)", "attribute extra=1"]),
    "conv3d": (lambda: make_model([conv(name="c3", b=None)], {"x": (N, 2, 4, 4, 4)}, ["y"],
                                  {"W": randn(2, 2, 3, 3, 3)}),
               ["input 'x'"]),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_cannot_be_lowered_exactly_is_refused(case, tmp_path):
    build, needles = REFUSED[case]
    _refused(tmp_path, build(), *needles)


def test_every_unsupported_node_is_listed_at_once(tmp_path):
    nodes = [
        conv(name="c1", dst="a", strides=[2, 2], dilations=[2, 2]),
        helper.make_node("Softsign", ["a"], ["b"], name="ss"),
        helper.make_node("Elu", ["b"], ["c"], name="elu", alpha=0.3),
        conv(name="c2", src="c", dst="d", w="W2", b=None, pads=[1, 1, 1, 1], foo=3),
        helper.make_node("Selu", ["d"], ["e"]),
        helper.make_node("Relu", ["e"], ["y"], name="fine"),
    ]
    model = single(nodes, inits={**weights(4, 3, 3, 3), "W2": randn(4, 4, 3, 3)},
                   x=(N, 3, 16, 16))
    text = _refused(tmp_path, model, "5 nodes", "node 'c1' (Conv)", "node 'ss' (Softsign)",
                    "node 'elu' (Elu): alpha=0.3", "node 'c2' (Conv): attribute foo=3",
                    "(Selu): this operator is not supported")
    assert "fine" not in text


def test_the_cli_lists_them_and_exits_2(tmp_path, capsys):
    from cnnc.cli import main

    path = save(REFUSED["elu_alpha"][0](), tmp_path / "bad.onnx")
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.onnx" in err and "node 'e' (Elu)" in err and "Traceback" not in err
