"""Squeeze-and-excitation's input gradient as one node (cnnc/passes/fuse_excite_grad.py): which
graphs fuse (the op's hand-worked value: test_train_op_semantics.py), and that a training step computes the same loss,
gradients and updates with and without the fusion."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy import NumpyBackend
from cnnc.initializers import initial_values
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.fuse_excite_grad import fuse_excite_grad
from cnnc.passes.pipeline import training_graph
from cnnc.testing.nets import run, training_graph_without

CONFIG = TrainConfig(loss="mean_squared_error")


def _net():
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    return lower("net", [
        L("input", [(4, 3, 5)], name="x"),
        L("conv2d", [8, 3], {"padding": "same", "use_bias": False}, name="c"),
        L("batchnorm", [], name="bn"),
        L("activation", ["silu"], name="a"),  # the efficientnet_mini form
        L("global_avgpool2d", [], {"keepdims": True}, name="sq"),
        L("conv2d", [2, 1], {"activation": "silu"}, name="fc"),
        L("conv2d", [8, 1], {"activation": "sigmoid"}, name="gate"),
        L("multiply", [], inputs=["a", "gate"], name="se"),
        L("conv2d", [6, 1], name="p"),
        L("global_avgpool2d", [], name="sq2"),  # (N, C): a gate without the 1x1 axes
        L("dense", [6], {"activation": "sigmoid"}, name="gate2"),
        L("multiply", [], inputs=["gate2", "p"], name="se2"),
        L("conv2d", [6, 1], name="map_gate", inputs=["se2"]),  # a map-shaped gate: not fused
        L("multiply", [], inputs=["se2", "map_gate"], name="se3"),
        L("flatten", name="f"),
        L("dense", [2], name="d"),
    ])


def _unfused(graph):
    return training_graph_without(graph, CONFIG, "fuse_excite_grad")


def test_both_contributions_become_one_node():
    t = training_graph(_net(), CONFIG, check=True)
    for value, gate, pooled in (("a", "gate", "sq"), ("p", "gate2", "sq2")):
        node = t.node(names.grad(value))
        assert node.op == "excite_grad", value
        dm, g, dpool = node.inputs
        assert (g, dpool) == (gate, names.grad(pooled)), value
        assert dm == names.grad("se" if value == "a" else "se2"), value
        assert names.grad_part(value, 0) not in t.node_map
        assert names.grad_part(value, 1) not in t.node_map
    # a map-shaped gate's product and no pooling: left as it was
    assert t.node(names.grad("se2")).op == "add"


def test_nothing_to_fuse_leaves_the_graph_as_it_is():
    u = _unfused(_net())
    plain = fuse_excite_grad(u)
    assert sum(n.op == "excite_grad" for n in plain.nodes) == 2
    done = fuse_excite_grad(plain)
    assert done is plain


def test_fused_training_step_equals_unfused(rng):
    g = _net()
    fused, unfused = training_graph(g, CONFIG, check=True), _unfused(g)
    assert "excite_grad" not in {n.op for n in unfused.nodes}
    feeds = {"x": rng.normal(size=(3, 4, 3, 5)), names.TARGET: rng.normal(size=(3, 2))}
    results = []
    for t in (fused, unfused):
        backend = NumpyBackend("float64")
        fetch = [n.name for n in t.nodes if n.shape is not None and n.name in fused.node_map
                 and n.name.startswith("grad/")]
        out = run(t, feeds, initial_values(t.state, 3, "float64"), [names.LOSS, *fetch],
                  backend=backend)
        results.append((out, backend.read_state([s.name for s in g.state])))
    (a, state_a), (b, state_b) = results
    assert {names.grad("a"), names.grad("p")} <= set(a) & set(b)
    for k in set(a) & set(b):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14, err_msg=k)
    for k in state_b:
        np.testing.assert_allclose(state_a[k], state_b[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_a_relu_map_squeezed_keeps_its_excite_grad():
    # A relu read from y fuses its derivative into an add (fuse_act_grad), but not into a
    # squeeze-excite block's sum: excite_grad there saves two of three launches over the map.
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    g = lower("net", [
        L("input", [(4, 3, 5)], name="x"),
        L("conv2d", [8, 3], {"padding": "same", "activation": "relu"}, name="c"),
        L("global_avgpool2d", [], {"keepdims": True}, name="sq"),
        L("conv2d", [8, 1], {"activation": "sigmoid"}, name="gate"),
        L("multiply", [], inputs=["c", "gate"], name="se"),
        L("flatten", name="f"),
        L("dense", [2], name="d"),
    ])
    t = training_graph(g, CONFIG, check=True)
    assert t.node(names.grad("c")).op == "excite_grad"
    assert not any(n.op == "add_act_grad" for n in t.nodes)
