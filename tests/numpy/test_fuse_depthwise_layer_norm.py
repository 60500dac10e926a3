"""A depthwise convolution and the layer norm over its channels as one depthwise_layer_norm node
(passes/fuse_depthwise_layer_norm.py, cnnc/ir/depthwise_layer_norm.py): a value worked by hand,
which graphs fuse and which must not, and that the fused graph computes what the unfused one
does on the NumPy reference, convnext_mini included."""

from __future__ import annotations

import numpy as np
import pytest
from test_fold_batchnorm import random_state

import cnnc
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.args import ArgError
from cnnc.ir.depthwise_layer_norm import MAX_CHANNELS
from cnnc.ir.ops import OPS
from cnnc.passes.pipeline import inference_graph, inference_pipeline, run_pipeline
from cnnc.testing.nets import run


def _block(*tail: L, c: int = 3, hw: tuple[int, int] = (5, 4), k: int = 3,
           dw: dict | None = None, ln: dict | None = None, outputs=None):
    """input HxWxc -> depthwise kxk 'same' -> layer_norm [-> tail]."""
    return lower("net", [L("input", [(*hw, c)], name="in"),
                         L("depthwise_conv2d", [k], {"padding": "same", **(dw or {})},
                           name="d"),
                         L("layer_norm", [], {"epsilon": 1e-6, **(ln or {})}, name="n"),
                         *tail], outputs=outputs)


def _same_outputs(graph, seed: int = 0, batch: int = 3):
    fused = inference_graph(graph, check=True)
    rng = np.random.default_rng(seed)
    feeds = {n: rng.normal(size=(batch, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = random_state(graph, seed + 1)
    unfused = run_pipeline(graph, [p for p in inference_pipeline()
                                   if p.name != "fuse_depthwise_layer_norm"])
    before, after = run(unfused, feeds, state), run(fused, feeds, state)
    for name in graph.outputs:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    return fused


def _ops(graph):
    return {n.name: n.op for n in graph.nodes if n.op != "input"}


def test_a_one_pixel_block_by_hand():
    # 1x1 input, 3x3 'same' window: only the centre tap reads the image.
    g = lower("net", [L("input", [(1, 1, 2)], name="in"),
                      L("depthwise_conv2d", [3], {"padding": "same"}, name="d"),
                      L("layer_norm", [], {"epsilon": 1e-6}, name="n")])
    fused = inference_graph(g, check=True)
    assert _ops(fused) == {"n": "depthwise_layer_norm"}
    dw = np.zeros((3, 3, 2, 1))
    dw[1, 1, :, 0] = [2.0, -1.0]
    state = {"d/kernel": dw, "d/bias": np.array([0.5, 0.25]),
             "n/gamma": np.array([2.0, 3.0]), "n/beta": np.array([1.0, -1.0])}
    assert set(state) == set(fused.state_map)
    # depthwise: 4 * 2 + 0.5 = 8.5, 1 * -1 + 0.25 = -0.75; mean 3.875, deviations +-4.625:
    # normalised +-1 (up to epsilon), then * gamma + beta: 2 + 1 = 3, -3 - 1 = -4.
    out = run(fused, {"in": np.array([4.0, 1.0]).reshape(1, 1, 1, 2)}, state)["n"]
    np.testing.assert_allclose(out.ravel(), [3.0, -4.0], rtol=1e-6)


@pytest.mark.parametrize("c, hw, k, dw, ln", [
    (3, (5, 4), 3, {}, {}),
    (5, (7, 7), 7, {}, {}),
    (8, (5, 3), 3, {"strides": 2}, {"center": False}),
    (6, (4, 5), 3, {"activation": "relu", "use_bias": False}, {"scale": False}),
    (7, (3, 3), 3, {"dilation_rate": 2}, {"center": False, "scale": False}),
    (MAX_CHANNELS, (3, 3), 7, {}, {}),
])
def test_the_pair_fuses_and_computes_the_same(c, hw, k, dw, ln):
    graph = _block(c=c, hw=hw, k=k, dw=dw, ln=ln)
    fused = _same_outputs(graph)
    assert _ops(fused) == {"n": "depthwise_layer_norm"}
    node = fused.node("n")
    assert node.inputs == ("in",)
    assert node.params == graph.node("d").params + graph.node("n").params


@pytest.mark.parametrize("case", ["wide", "multiplier", "two_readers", "output", "softmax"])
def test_what_must_stay_as_it_is(case):
    keep = {"d": "depthwise_conv2d", "n": "layer_norm"}
    if case == "wide":  # more channels than a work-item holds
        g = _block(c=MAX_CHANNELS + 1)
    elif case == "multiplier":
        g = _block(dw={"depth_multiplier": 2})
    elif case == "two_readers":  # the depthwise map is needed anyway
        g = _block(L("global_avgpool2d", name="g", inputs=["d"]), outputs=["n", "g"])
        keep = {**keep, "g": "global_avgpool2d"}
    elif case == "output":
        g = _block(outputs=["d", "n"])
    else:  # softmax spans the channels: not an element-wise epilogue
        g = _block(dw={"activation": "softmax"})
    assert _ops(_same_outputs(g)) == keep


def test_the_op_checks_its_parts():
    op = OPS["depthwise_layer_norm"]
    attrs = dict(inference_graph(_block(), check=True).node("n").attrs)
    with pytest.raises(ArgError, match="depth_multiplier=1"):
        op.check_attrs({**attrs, "depthwise": attrs["depthwise"].replace(depth_multiplier=2)})
    with pytest.raises(ArgError, match="part's attributes"):
        op.check_attrs({**attrs, "layer_norm": attrs["layer_norm"].replace(axis=1)})


def test_convnext_mini_fuses_its_three_depthwise_norms():
    graph = cnnc.load_spec("convnext_mini")
    fused = _same_outputs(graph, batch=2)
    ops = [n.op for n in fused.nodes]
    assert ops.count("depthwise_layer_norm") == 3
    assert ops.count("layer_norm") == 3  # the stem's, the downsampling's and the head's
