"""An activation's gradient fused into the op producing its dy (passes/fuse_act_grad.py): which
graphs fuse, and that a training step computes the same loss, gradients and updates with and
without the fusion (the fused ops' NumPy implementations, backends/numpy/act_grad_impls.py)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.numpy import NumpyBackend
from cnnc.initializers import initial_values
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.fuse_act_grad import fuse_activation_grad
from cnnc.passes.pipeline import run_pipeline, training_graph, training_pipeline
from cnnc.testing.nets import chain, run

CONFIG = TrainConfig(loss="mean_squared_error")
NEW = ["silu", "gelu", "gelu_tanh", "hard_swish", "hard_sigmoid", "mish", "softplus"]


def _unfused(graph):
    passes = [p for p in training_pipeline(loss=CONFIG.loss, optimizer=CONFIG.optimizer, seed=0)
              if p.name != "fuse_activation_grad"]
    return run_pipeline(graph, passes, check=True)


def _net(act: str):
    # conv2d, depthwise and dense producers of each dy, and a dy summed from two readers (add)
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    return lower("net", [
        L("input", [(5, 6, 3)], name="x"),
        L("conv2d", [4, 3], {"padding": "same", "activation": act}, name="c1"),
        L("conv2d", [5, 1], {"activation": act}, name="c2"),
        L("depthwise_conv2d", [3], {"padding": "same", "activation": act}, name="dw"),
        L("conv2d", [3, 1], name="p", inputs=["dw"]),
        L("conv2d", [3, 3], {"padding": "same"}, name="q", inputs=["dw"]),
        L("add", name="s", inputs=["p", "q"]),
        L("flatten", name="f"),
        L("dense", [6], {"activation": act}, name="d1"),
        L("dense", [2], name="d2"),
    ])


@pytest.mark.parametrize("act", NEW)
def test_every_activation_gradient_fuses_into_its_producer(act):
    t = training_graph(_net(act), CONFIG, check=True)
    assert not [n.name for n in t.nodes if n.op == "activation_grad"]
    ops = {n.name: n.op for n in t.nodes}
    # c1's dy comes from c2's input gradient, c2's from the depthwise one, dw's from the sum of
    # p's and q's input gradients, d1's from d2's.
    assert ops[names.preact_grad("c1")] == "conv2d_grad_input_act_grad"
    assert ops[names.preact_grad("c2")] == "depthwise_conv2d_grad_input_act_grad"
    assert ops[names.preact_grad("dw")] == "add_act_grad"
    assert ops[names.preact_grad("d1")] == "dense_grad_input_act_grad"
    fused = [n for n in t.nodes if n.op.endswith("_act_grad")]
    assert {n.op for n in fused} == {"conv2d_grad_input_act_grad",
                                     "depthwise_conv2d_grad_input_act_grad", "add_act_grad",
                                     "dense_grad_input_act_grad"}
    assert all(n.attrs["activation"] == act for n in fused)


def test_activations_read_from_their_output_fuse_only_into_an_add():
    t = training_graph(_net("relu"), CONFIG, check=True)
    # dw's relu: its dy is the sum of p's and q's input gradients; the others are left alone
    assert [n.op for n in t.nodes if n.op.endswith("_act_grad")] == ["add_act_grad"]
    assert t.node(names.preact_grad("dw")).op == "add_act_grad"
    assert sum(n.op == "activation_grad" for n in t.nodes) == 3


def test_a_relu_after_an_add_fused_training_step_equals_unfused(rng):
    g = _net("relu")
    fused, unfused = training_graph(g, CONFIG, check=True), _unfused(g)
    assert any(n.op == "add_act_grad" for n in fused.nodes)
    feeds = {"x": rng.normal(size=(3, 5, 6, 3)), names.TARGET: rng.normal(size=(3, 2))}
    states = []
    for t in (fused, unfused):
        backend = NumpyBackend("float64")
        run(t, feeds, initial_values(t.state, 3, "float64"), [names.LOSS], backend=backend)
        states.append(backend.read_state([s.name for s in g.state]))
    for k in states[1]:
        np.testing.assert_allclose(states[0][k], states[1][k], rtol=1e-12, atol=1e-14,
                                   err_msg=k)


def test_no_fusion_where_dy_is_read_twice_or_the_activation_spans_a_row():
    g = chain((6,), ("dense", 4, {"activation": "gelu"}), ("dense", 3, {"activation": "softmax"}))
    t = training_graph(g, TrainConfig(loss="categorical_crossentropy"), check=True)
    assert not any(n.op.endswith("_act_grad") and n.attrs["activation"] == "softmax"
                   for n in t.nodes)
    u = _unfused(g)
    dy = u.node(names.preact_grad("dense")).inputs[1]
    # a second reader of dy (as a graph output): left alone
    kept = u.with_nodes(u.nodes, outputs=(*u.outputs, dy))
    assert fuse_activation_grad(kept) == kept


@pytest.mark.parametrize("act", NEW)
def test_fused_training_step_equals_unfused(act, rng):
    g = _net(act)
    fused, unfused = training_graph(g, CONFIG, check=True), _unfused(g)
    assert any(n.op.endswith("_act_grad") for n in fused.nodes)
    assert not any(n.op.endswith("_act_grad") for n in unfused.nodes)
    feeds = {"x": rng.normal(size=(3, 5, 6, 3)) * 2, names.TARGET: rng.normal(size=(3, 2))}
    results = []
    for t in (fused, unfused):
        backend = NumpyBackend("float64")
        fetch = [n.name for n in t.nodes if n.shape is not None and n.name.startswith("grad/")]
        out = run(t, feeds, initial_values(t.state, 3, "float64"), [names.LOSS, *fetch],
                  backend=backend)
        results.append((out, backend.read_state([s.name for s in g.state])))
    (a, state_a), (b, state_b) = results
    common = set(a) & set(b)
    assert len(common) > 10
    for k in common:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14, err_msg=k)
    for k in state_b:
        np.testing.assert_allclose(state_a[k], state_b[k], rtol=1e-12, atol=1e-14, err_msg=k)
