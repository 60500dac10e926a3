"""The residual add fused into the layer that feeds it (passes/fuse_residual.py): which graphs
fuse, which must not, and that the fused graph computes what the unfused one does on the NumPy
reference (the residual ops' own implementations, cnnc/backends/numpy/residual_impls.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_fold_batchnorm import random_state

import cnnc
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.graph import VerifyError, verify
from cnnc.passes.fuse_residual import fuse_residual
from cnnc.passes.pipeline import inference_graph
from cnnc.testing.nets import run


def _net(*layers: L, outputs=None):
    return lower("net", [L("input", [(6, 5, 4)], name="x"), *layers], outputs=outputs)


def _same_outputs(graph, seed: int = 0):
    fused = inference_graph(graph, check=True)
    rng = np.random.default_rng(seed)
    feeds = {n: rng.normal(size=(3, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = random_state(graph, seed + 1)
    before, after = run(graph, feeds, state), run(fused, feeds, state)
    for name in graph.outputs:
        np.testing.assert_allclose(after[name], before[name], rtol=1e-10, atol=1e-10,
                                   err_msg=name)
    return fused


def _ops(graph):
    return {n.name: n.op for n in graph.nodes}


def test_conv_batchnorm_add_relu_is_one_node_named_after_the_activation():
    g = _net(L("conv2d", [4, 3], {"padding": "same", "use_bias": False}, name="c"),
             L("batchnorm", name="bn"),
             L("add", name="sum", inputs=["x", "bn"]),
             L("activation", ["relu"], name="out"))
    fused = _same_outputs(g)
    assert _ops(fused) == {"x": "input", "out": "conv2d_bn_add"}
    node = fused.node("out")
    assert node.inputs == ("x", "x") and node.attrs["activation"] == "relu"
    assert node.params == g.node("c").params + g.node("bn").params


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "relu6", "elu", "sigmoid", "tanh"])
def test_every_elementwise_activation_fuses_after_the_add(act):
    g = _net(L("conv2d", [4, 3], {"padding": "same"}, name="c"),
             L("add", name="sum", inputs=["c", "x"]),
             L("activation", [act], name="out"))
    fused = _same_outputs(g)
    assert _ops(fused) == {"x": "input", "out": "conv2d_add"}
    assert fused.node("out").attrs["activation"] == act


def test_a_softmax_after_the_add_stays_a_layer_of_its_own():
    g = _net(L("conv2d", [4, 3], {"padding": "same"}, name="c"),
             L("add", name="sum", inputs=["c", "x"]),
             L("activation", ["softmax"], name="out"))
    fused = _same_outputs(g)
    assert _ops(fused) == {"x": "input", "sum": "conv2d_add", "out": "activation"}
    assert fused.node("sum").attrs["activation"] == "linear"


def test_an_add_with_no_activation_after_it_fuses_too():
    g = _net(L("conv2d", [4, 1], name="c"), L("add", name="sum", inputs=["x", "c"]),
             L("maxpool2d", [2], name="pool"))
    fused = _same_outputs(g)
    # the residual convolution then joins the pooling reading it (fuse_conv_maxpool)
    assert _ops(fused) == {"x": "input", "pool": "conv2d_maxpool"}
    assert fused.node("pool").attrs["conv_op"] == "conv2d_add"


def test_dense_and_folded_dense_fuse():
    g = lower("net", [
        L("input", [(7,)], name="x"),
        L("dense", [7], name="d"), L("add", name="s1", inputs=["d", "x"]),
        L("dense", [7], {"use_bias": False}, name="e"), L("batchnorm", name="bn"),
        L("add", name="s2", inputs=["s1", "bn"]), L("activation", ["tanh"], name="out"),
    ])
    fused = _same_outputs(g)
    assert _ops(fused) == {"x": "input", "s1": "dense_add", "out": "dense_bn_add"}
    assert fused.node("out").inputs == ("s1", "s1")


def test_two_fusable_operands_fuse_the_first_and_keep_the_other():
    g = _net(L("conv2d", [4, 3], {"padding": "same"}, name="a", inputs=["x"]),
             L("conv2d", [4, 1], name="b", inputs=["x"]),
             L("add", name="sum", inputs=["a", "b"]), L("activation", ["relu"], name="out"))
    fused = _same_outputs(g)
    assert _ops(fused) == {"x": "input", "b": "conv2d", "out": "conv2d_add"}
    assert fused.node("out").inputs == ("x", "b")


@pytest.mark.parametrize("layers,outputs", [
    # the layer's value is read elsewhere too
    ([L("conv2d", [4, 1], name="c"), L("add", name="sum", inputs=["c", "x"]),
      L("add", name="again", inputs=["sum", "c"])], None),
    # the layer's value is an output
    ([L("conv2d", [4, 1], name="c"), L("add", name="sum", inputs=["c", "x"])], ["c", "sum"]),
    # an activation of its own before the add: act(conv) + x is not act(conv + x)
    ([L("conv2d", [4, 1], {"activation": "relu"}, name="c"),
      L("add", name="sum", inputs=["c", "x"])], None),
    ([L("conv2d", [4, 1], name="c"), L("activation", ["relu"], name="r"),
      L("add", name="sum", inputs=["r", "x"])], None),
    # three operands
    ([L("conv2d", [4, 1], name="c"), L("add", name="sum", inputs=["c", "x", "x"])], None),
    # both operands the same value
    ([L("conv2d", [4, 1], name="c"), L("add", name="sum", inputs=["c", "c"])], None),
    # not a layer that fuses: a pooling, a depthwise convolution
    ([L("maxpool2d", [1], name="p"), L("add", name="sum", inputs=["p", "x"])], None),
    ([L("depthwise_conv2d", [1], name="c"), L("add", name="sum", inputs=["c", "x"])], None),
])
def test_left_alone(layers, outputs):
    g = _net(*layers, outputs=outputs)
    assert fuse_residual(g) == g
    fused = _same_outputs(g)
    assert not any(n.op.endswith("_add") for n in fused.nodes)


def test_resnet_mini_joins_are_fused():
    spec = cnnc.load_spec("specs/resnet_mini.yaml")
    fused = _same_outputs(spec)
    assert _ops(fused)["b1_out"] == "conv2d_bn_add"
    assert _ops(fused)["activation_2"] == "conv2d_bn_add"
    assert "add" not in _ops(fused).values() and "activation" not in _ops(fused).values()


def test_the_residual_ops_check_their_operands():
    from cnnc.errors import ShapeError
    from cnnc.ir.ops import OPS

    op = OPS["conv2d_add"]
    attrs = op.check_attrs({"filters": 4, "kernel_size": 3})
    assert op.infer(attrs, ((None, 5, 5, 2), (None, 3, 3, 4))) == (None, 3, 3, 4)
    with pytest.raises(ShapeError, match=r"residual \(None, 5, 5, 4\) differs"):
        op.infer(attrs, ((None, 5, 5, 2), (None, 5, 5, 4)))
    g = inference_graph(_net(L("conv2d", [4, 1], name="c"),
                             L("add", name="sum", inputs=["c", "x"])))
    node = g.node("sum")
    assert node.op == "conv2d_add"
    bad = g.with_nodes([replace(n, attrs=n.attrs.replace(activation="softmax"))
                        if n is node else n for n in g.nodes])
    with pytest.raises(VerifyError, match="spans a row"):
        verify(bad)
