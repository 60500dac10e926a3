"""A depthwise convolution and the 1x1 convolution reading it as one depthwise_pointwise node
(passes/fuse_depthwise_pointwise.py, cnnc/ir/depthwise_pointwise.py): a value worked by hand,
which graphs fuse and which must not, and that the fused graph computes what the unfused one
does on the NumPy reference, in the example specs too."""

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


def _block(*tail: L, dw: dict | None = None, pw: dict | None = None, dw_act: str = "",
           pw_act: str = "relu", outputs=None):
    """input 4x4x2 -> depthwise 3x3 (M=2) -> batchnorm [-> dw_act] -> 1x1 conv (3) ->
    batchnorm [-> pw_act] [-> tail]."""
    return lower("net", [L("input", [(4, 4, 2)], name="in"),
                         L("depthwise_conv2d", [3], {"padding": "same", "depth_multiplier": 2,
                                                     **(dw or {})}, name="d"),
                         L("batchnorm", name="dbn"),
                         *([L("activation", [dw_act], name="da")] if dw_act else []),
                         L("conv2d", [3], {"kernel_size": 1, **(pw or {})}, name="p"),
                         L("batchnorm", name="pbn"),
                         *([L("activation", [pw_act], name="pa")] if pw_act else []),
                         *tail], outputs=outputs)


def _same_outputs(graph, seed: int = 0, batch: int = 3):
    fused = inference_graph(graph, check=True)
    rng = np.random.default_rng(seed)
    feeds = {n: rng.normal(size=(batch, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = random_state(graph, seed + 1)
    unfused = run_pipeline(graph, [p for p in inference_pipeline()
                                   if p.name != "fuse_depthwise_pointwise"])
    before, after = run(unfused, feeds, state), run(fused, feeds, state)
    for name in graph.outputs:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    return fused


def _ops(graph):
    return {n.name: n.op for n in graph.nodes if n.op != "input"}


def test_a_one_pixel_block_by_hand():
    # 1x1 input, 3x3 'same' window: only the centre tap reads the image.
    g = lower("net", [L("input", [(1, 1, 2)], name="in"),
                      L("depthwise_conv2d", [3], {"padding": "same", "activation": "relu6"},
                        name="d"),
                      L("conv2d", [1, 1], {"activation": "relu6"}, name="p")])
    fused = inference_graph(g, check=True)
    assert _ops(fused) == {"p": "depthwise_pointwise"}
    dw = np.zeros((3, 3, 2, 1))
    dw[1, 1, :, 0] = [2.0, -1.0]
    state = {"d/kernel": dw, "d/bias": np.array([0.5, 0.25]),
             "p/kernel": np.array([3.0, 1.0]).reshape(1, 1, 2, 1), "p/bias": np.array([-4.0])}
    state = {k: v for k, v in state.items() if k in fused.state_map}
    assert set(state) == set(fused.state_map)
    x = np.array([4.0, 1.0]).reshape(1, 1, 1, 2)
    # depthwise: relu6(4 * 2 + 0.5) = 6, relu6(1 * -1 + 0.25) = 0; pointwise: 6 * 3 + 0 - 4 = 14
    # -> relu6: 6. A second example below the cap: x = (0.25, 0): d = (1, 0.25) -> 3 + 0.25 - 4.
    x = np.concatenate([x, np.array([0.25, 0.0]).reshape(1, 1, 1, 2)])
    out = run(fused, {"in": x}, state)["p"]
    assert out.ravel().tolist() == [6.0, 0.0]
    state["p/bias"] = np.array([1.0])  # 1 * 3 + 0.25 * 1 + 1
    assert run(fused, {"in": x[1:]}, state)["p"].ravel().tolist() == [4.25]


def test_a_block_with_batch_norms_fuses_and_computes_the_same():
    fused = _same_outputs(_block())
    assert _ops(fused) == {"pa": "depthwise_pointwise"}
    node = fused.node("pa")
    assert (node.attrs["depthwise_op"], node.attrs["pointwise_op"]) == ("depthwise_conv2d_bn",
                                                                       "conv2d_bn")
    assert node.inputs == ("in",)


@pytest.mark.parametrize("dw, pw, acts", [({"strides": 2}, {}, ("", "relu")),
                                          ({}, {}, ("relu", "relu")),
                                          ({}, {}, ("hard_swish", "")),
                                          ({"dilation_rate": 2}, {"use_bias": False}, ("", "")),
                                          ({"use_bias": True}, {}, ("relu6", "relu6"))])
def test_strided_dilated_and_activated_parts_fuse(dw, pw, acts):
    fused = _same_outputs(_block(dw=dw, pw=pw, dw_act=acts[0], pw_act=acts[1]))
    assert list(_ops(fused).values()) == ["depthwise_pointwise"]


@pytest.mark.parametrize("case", ["two_activations", "3x3", "strided", "two_readers", "output",
                                  "residual"])
def test_what_must_stay_as_it_is(case):
    keep = {"dbn": "depthwise_conv2d_bn", "pa": "conv2d_bn"}
    if case == "two_activations":  # one ACTIVATE per kernel build
        g = _block(dw_act="relu6")
        keep = {"da": "depthwise_conv2d_bn", "pa": "conv2d_bn"}
    elif case == "3x3":
        g = _block(pw={"kernel_size": 3, "padding": "same"})
    elif case == "strided":
        g = _block(pw={"strides": 2})
    elif case == "two_readers":  # the depthwise map is needed anyway
        g = _block(L("global_avgpool2d", name="g", inputs=["dbn"]), outputs=["pa", "g"])
        keep = {**keep, "g": "global_avgpool2d"}
    elif case == "output":
        g = _block(outputs=["dbn", "pa"])
    else:  # a residual projection: left to fuse_residual's op
        g = lower("net", [L("input", [(4, 4, 3)], name="in"),
                          L("depthwise_conv2d", [3], {"padding": "same"}, name="d"),
                          L("conv2d", [3, 1], name="p"),
                          L("add", name="out", inputs=["in", "p"])])
        keep = {"d": "depthwise_conv2d", "out": "conv2d_add"}
    assert _ops(_same_outputs(g)) == keep


def test_the_op_checks_its_parts():
    op = OPS["depthwise_pointwise"]
    fused = inference_graph(_block(), check=True).node("pa")
    attrs = dict(fused.attrs)
    with pytest.raises(ArgError, match="1x1"):
        op.check_attrs({**attrs, "pointwise": attrs["pointwise"].replace(kernel_size=(3, 3))})
    with pytest.raises(ArgError, match="at most one activation"):
        op.check_attrs({**attrs, "depthwise": attrs["depthwise"].replace(activation="relu6")})
    with pytest.raises(ArgError, match="part's attributes"):
        op.check_attrs({**attrs, "depthwise": attrs["depthwise"].replace(depth_multiplier=0)})


@pytest.mark.parametrize("strides, ops", [
    (2, {"d": "pointwise_depthwise", "pbn": "conv2d_bn"}),
    (1, {"e": "conv2d", "pbn": "depthwise_pointwise"})])
def test_a_strided_depthwise_between_two_1x1_convolutions_goes_to_its_expansion(strides, ops):
    # the expanded map is strides^2 times the depthwise's output: fuse_pointwise_depthwise pairs
    # a strided depthwise with the expansion that writes it; a stride-1 one stays here
    g = lower("net", [L("input", [(6, 6, 2)], name="in"),
                      L("conv2d", [8, 1], {"activation": "relu"}, name="e"),
                      L("depthwise_conv2d", [3], {"padding": "same", "strides": strides},
                        name="d"),
                      L("conv2d", [3, 1], {"use_bias": False}, name="p"),
                      L("batchnorm", name="pbn")])
    fused = _same_outputs(g)
    assert _ops(fused) == ops


# mobilenetv3_mini's only plain block and one of shufflenet_mini's have a strided depthwise
# after an expansion: fuse_pointwise_depthwise takes those
@pytest.mark.parametrize("spec, blocks", [("mobilenet_mini", 2), ("mobilenetv3_mini", 0),
                                          ("shufflenet_mini", 3), ("efficientnet_mini", 0)])
def test_the_example_specs_fuse_their_plain_blocks(spec, blocks):
    graph = cnnc.load_spec(spec)
    fused = _same_outputs(graph, batch=2)
    ops = [n.op for n in fused.nodes]
    assert ops.count("depthwise_pointwise") == blocks
