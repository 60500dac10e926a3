"""A 1x1 convolution and the depthwise convolution reading it as one pointwise_depthwise node
(passes/fuse_pointwise_depthwise.py, cnnc/ir/pointwise_depthwise.py): a value worked by hand,
which graphs fuse and which must not, and that the fused graph computes what the unfused one
does on the NumPy reference, efficientnet_mini's squeeze-excite blocks (which read the depthwise
map) and mobilenetv3_mini included."""

from __future__ import annotations

import numpy as np
import pytest
from test_fold_batchnorm import random_state

import cnnc
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.args import ArgError
from cnnc.ir.ops import OPS
from cnnc.passes.pipeline import inference_graph, inference_pipeline, run_pipeline
from cnnc.testing.nets import run

PASS = "fuse_pointwise_depthwise"


def _block(*tail: L, pw: dict | None = None, dw: dict | None = None, pw_act: str = "silu",
           dw_act: str = "silu", k: int = 3, outputs=None):
    """input 5x4x3 -> 1x1 conv (8) -> batchnorm [-> pw_act] -> depthwise kxk stride 2 -> batchnorm
    [-> dw_act] [-> tail]."""
    return lower("net", [L("input", [(5, 4, 3)], name="in"),
                         L("conv2d", [8], {"kernel_size": 1, **(pw or {})}, name="p"),
                         L("batchnorm", name="pbn"),
                         *([L("activation", [pw_act], name="pa")] if pw_act else []),
                         L("depthwise_conv2d", [k], {"padding": "same", "strides": 2,
                                                     **(dw or {})},
                           name="d"),
                         L("batchnorm", name="dbn"),
                         *([L("activation", [dw_act], name="da")] if dw_act else []),
                         *tail], outputs=outputs)


def _same_outputs(graph, seed: int = 0, batch: int = 3):
    fused = inference_graph(graph, check=True)
    rng = np.random.default_rng(seed)
    feeds = {n: rng.normal(size=(batch, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = random_state(graph, seed + 1)
    unfused = run_pipeline(graph, [p for p in inference_pipeline() if p.name != PASS])
    before, after = run(unfused, feeds, state), run(fused, feeds, state)
    for name in graph.outputs:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    return fused


def _ops(graph):
    return {n.name: n.op for n in graph.nodes if n.op != "input"}


def test_a_one_pixel_block_by_hand():
    # 1x1 input, 3x3 'same' window (stride 2: one output pixel): only the centre tap reads
    # the expanded pixel.
    g = lower("net", [L("input", [(1, 1, 2)], name="in"),
                      L("conv2d", [2, 1], {"activation": "relu"}, name="p"),
                      L("depthwise_conv2d", [3], {"padding": "same", "strides": 2}, name="d")])
    fused = inference_graph(g, check=True)
    assert _ops(fused) == {"d": "pointwise_depthwise"}
    dw = np.zeros((3, 3, 2, 1))
    dw[1, 1, :, 0] = [2.0, -1.0]
    state = {"p/kernel": np.array([[1.0, -1.0], [2.0, 1.0]]).reshape(1, 1, 2, 2),
             "p/bias": np.array([0.5, 0.0]), "d/kernel": dw, "d/bias": np.array([0.25, 1.0])}
    assert set(state) == set(fused.state_map)
    # x = (3, 1): expanded relu(3 + 2 + 0.5) = 5.5, relu(-3 + 1) = 0;
    # depthwise 5.5 * 2 + 0.25 = 11.25, 0 * -1 + 1 = 1.
    out = run(fused, {"in": np.array([3.0, 1.0]).reshape(1, 1, 1, 2)}, state)["d"]
    np.testing.assert_allclose(out.ravel(), [11.25, 1.0], rtol=1e-6)


@pytest.mark.parametrize("pw, dw, pw_act, dw_act, k", [
    ({}, {"strides": 2}, "silu", "silu", 3),
    ({}, {"strides": (2, 1)}, "relu", "", 3),
    ({"use_bias": False}, {"strides": 2}, "", "hard_swish", 5),
    ({}, {"strides": 2, "padding": "valid"}, "relu6", "relu6", 3),
])
def test_the_pair_fuses_and_computes_the_same(pw, dw, pw_act, dw_act, k):
    graph = _block(pw=pw, dw=dw, pw_act=pw_act, dw_act=dw_act, k=k)
    fused = _same_outputs(graph)
    out = graph.outputs[0]
    assert _ops(fused) == {out: "pointwise_depthwise"}
    node = fused.node(out)
    assert node.inputs == ("in",)
    assert node.attrs["pointwise_op"] == "conv2d_bn"
    assert node.attrs["depthwise_op"] == "depthwise_conv2d_bn"


@pytest.mark.parametrize("case", ["multiplier", "two_readers", "output", "two_activations",
                                  "strided", "wide_kernel", "softmax"])
def test_what_must_stay_as_it_is(case):
    keep = {"pa": "conv2d_bn", "da": "depthwise_conv2d_bn"}
    if case == "multiplier":
        g = _block(dw={"depth_multiplier": 2})
    elif case == "two_readers":  # the expanded map is needed anyway
        g = _block(L("global_avgpool2d", name="g", inputs=["pa"]), outputs=["da", "g"])
        keep = {**keep, "g": "global_avgpool2d"}
    elif case == "output":
        g = _block(outputs=["pa", "da"])
    elif case == "two_activations":  # the kernel builds one ACTIVATE
        g = _block(pw_act="relu")
    elif case == "strided":
        g = _block(pw={"strides": 2})
    elif case == "wide_kernel":
        g = _block(pw={"kernel_size": 3, "padding": "same"})
    else:
        g = _block(pw_act="softmax", dw_act="")
        keep = {"pa": "conv2d_bn", "dbn": "depthwise_conv2d_bn"}
    assert _ops(_same_outputs(g)) == keep


def test_the_op_checks_its_parts():
    op = OPS["pointwise_depthwise"]
    attrs = dict(inference_graph(_block(), check=True).node("da").attrs)
    with pytest.raises(ArgError, match="depth_multiplier=1"):
        op.check_attrs({**attrs, "depthwise": attrs["depthwise"].replace(depth_multiplier=2)})
    with pytest.raises(ArgError, match="1x1, stride-1"):
        op.check_attrs({**attrs, "pointwise": attrs["pointwise"].replace(strides=(2, 2))})
    with pytest.raises(ArgError, match="part's attributes"):
        op.check_attrs({**attrs, "pointwise": attrs["pointwise"].replace(filters=0)})


def test_efficientnet_mini_fuses_its_strided_expansion_and_its_gate_reads_the_depthwise_map():
    graph = cnnc.load_spec("efficientnet_mini")
    fused = _same_outputs(graph, batch=2)
    pairs = [n for n in fused.nodes if n.op == "pointwise_depthwise"]
    assert [n.name for n in pairs] == ["b2_dw"]  # b3's depthwise has stride 1
    for node in pairs:  # the squeeze-excite gate and the gated projection read the map
        readers = {fused.node(r).op for r in fused.consumers[node.name]}
        assert readers >= {"squeeze_excite"}, readers


def test_mobilenetv3_mini_fuses_its_strided_expansion_and_keeps_its_stride_1_one_apart():
    graph = cnnc.load_spec("mobilenetv3_mini")
    fused = _same_outputs(graph, batch=2)
    # b2's 3x3 stride-2 depthwise (under its activation's name) with its expansion, not with
    # its projection (fuse_depthwise_pointwise leaves it)
    assert [n.name for n in fused.nodes if n.op == "pointwise_depthwise"] == ["activation_1"]
    assert fused.node("b3_dw").op == "depthwise_conv2d_bn"


def test_a_stride_1_pair_stays_apart_where_it_does_not_pay():
    keep = {"pa": "conv2d_bn", "da": "depthwise_conv2d_bn"}
    assert _ops(_same_outputs(_block(dw={"strides": 1}))) == keep
