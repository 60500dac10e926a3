"""A squeeze-excite product folded into the convolution that reads it (passes/fold_gate.py):
which graphs fold, which must not, and that the folded graph computes what the unfolded one
does on the NumPy reference (the gated ops' own implementations,
cnnc/backends/numpy/gated_impls.py)."""

from __future__ import annotations

import numpy as np
import pytest
from test_fold_batchnorm import random_state

from cnnc.errors import ShapeError
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.args import Attrs
from cnnc.ir.ops import OPS
from cnnc.passes.pipeline import inference_graph
from cnnc.testing.nets import run


def _net(*layers: L, outputs=None):
    return lower("net", [L("input", [(6, 5, 4)], name="in"),
                         L("conv2d", [8, 3], {"padding": "same", "activation": "tanh"},
                           name="x"),
                         L("global_avgpool2d", [], {"keepdims": True}, name="sq"),
                         L("conv2d", [8, 1], {"activation": "sigmoid"}, name="gate"),
                         *layers], outputs=outputs)


def _same_outputs(graph, seed: int = 0):
    folded = inference_graph(graph, check=True)
    rng = np.random.default_rng(seed)
    feeds = {n: rng.normal(size=(3, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = random_state(graph, seed + 1)
    before, after = run(graph, feeds, state), run(folded, feeds, state)
    for name in graph.outputs:
        np.testing.assert_allclose(after[name], before[name], rtol=1e-10, atol=1e-10,
                                   err_msg=name)
    return folded


def _ops(graph):
    return {n.name: n.op for n in graph.nodes if n.op not in ("input", "global_avgpool2d")}


def test_se_projection_with_batchnorm_and_residual_is_one_gated_node():
    g = _net(L("multiply", name="se", inputs=["x", "gate"]),
             L("conv2d", [8, 1], {"use_bias": False}, name="proj"),
             L("batchnorm", name="bn"),
             L("add", name="out", inputs=["x", "bn"]))
    folded = _same_outputs(g)
    assert _ops(folded) == {"x": "conv2d", "gate": "conv2d", "out": "conv2d_bn_add_gated"}
    assert folded.node("out").inputs == ("x", "gate", "x")


@pytest.mark.parametrize("order", [("x", "gate"), ("gate", "x")])
def test_the_map_is_found_whichever_input_it_is(order):
    g = _net(L("multiply", name="se", inputs=list(order)),
             L("conv2d", [5, 3], {"strides": 2, "padding": "same", "activation": "relu"},
               name="out"))
    folded = _same_outputs(g)
    assert folded.node("out").op == "conv2d_gated"
    assert folded.node("out").inputs == ("x", "gate")


def test_a_map_shaped_gate_folds():
    g = _net(L("conv2d", [8, 1], {"activation": "sigmoid"}, name="mg", inputs=["x"]),
             L("multiply", name="se", inputs=["x", "mg"]),
             L("conv2d", [4, 3], name="out"))
    assert _same_outputs(g).node("out").op == "conv2d_gated"


def test_a_product_with_two_readers_or_an_output_is_left_alone():
    g = _net(L("multiply", name="se", inputs=["x", "gate"]),
             L("conv2d", [8, 1], name="c"),
             L("add", name="out", inputs=["c", "se"]))
    assert _ops(_same_outputs(g))["se"] == "multiply"
    g = _net(L("multiply", name="se", inputs=["x", "gate"]),
             L("conv2d", [4, 1], name="c"), outputs=["se", "c"])
    ops = _ops(_same_outputs(g))
    assert ops["se"] == "multiply" and ops["c"] == "conv2d"


def test_a_product_read_as_the_residual_or_activated_is_left_alone():
    # the product is the add's residual operand, not the convolution's input
    g = _net(L("conv2d", [8, 1], name="c", inputs=["x"]),
             L("multiply", name="se", inputs=["x", "gate"]),
             L("add", name="out", inputs=["c", "se"]))
    ops = _ops(_same_outputs(g))
    assert ops["se"] == "multiply" and ops["out"] == "conv2d_add"
    # act(x * g) is no scale of x: multiply_act, then the convolution
    g = _net(L("multiply", name="se", inputs=["x", "gate"]),
             L("activation", ["relu"], name="a"),
             L("conv2d", [4, 1], name="out"))
    ops = _ops(_same_outputs(g))
    assert ops["a"] == "multiply_act" and ops["out"] == "conv2d"


def test_three_inputs_or_two_broadcast_inputs_are_left_alone():
    g = _net(L("multiply", name="se", inputs=["x", "gate", "gate"]),
             L("conv2d", [4, 1], name="out"))
    assert _ops(_same_outputs(g))["se"] == "multiply"
    # (1, 1, 8) times (6, 5, 1): neither input has the product's shape
    g = _net(L("conv2d", [1, 1], name="one", inputs=["x"]),
             L("multiply", name="se", inputs=["gate", "one"]),
             L("conv2d", [4, 1], name="out"))
    assert _ops(_same_outputs(g))["se"] == "multiply"


def test_a_gate_that_does_not_broadcast_to_the_input_is_a_shape_error():
    attrs = OPS["conv2d_gated"].check_attrs({"filters": 4, "kernel_size": 1})
    with pytest.raises(ShapeError, match=r"gate \(None, 1, 1, 5\) does not broadcast"):
        OPS["conv2d_gated"].infer(Attrs(attrs), ((None, 6, 5, 8), (None, 1, 1, 5)))
