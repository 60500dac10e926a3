"""Layer normalisation's gamma and beta gradients as rows of one pass's sums
(cnnc/passes/share_ln_sums.py): which graphs share, that a training step computes the same loss,
gradients and updates with and without the sharing, and that data-parallel training keeps the
rows (layer norm's sums are the rank's own)."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy import NumpyBackend
from cnnc.initializers import initial_values
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph
from cnnc.passes.share_ln_sums import share_layer_norm_sums
from cnnc.passes.sync_batchnorm import exchange_points, sync_batchnorm
from cnnc.testing.nets import run, training_graph_without

CONFIG = TrainConfig(loss="mean_squared_error")


def _net():
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    return lower("net", [
        L("input", [(5, 4, 3)], name="x"),
        L("layer_norm", [], name="first"),  # x needs no gradient: the sums only
        L("conv2d", [6, 3], {"padding": "same"}, name="c1"),
        L("layer_norm", [], {"epsilon": 1e-5}, name="both"),
        L("activation", ["gelu"], name="a"),
        L("layer_norm", [], {"center": False}, name="gamma_only"),
        L("layer_norm", [], {"scale": False}, name="beta_only"),
        L("flatten", name="f"),
        L("dense", [2], name="d"),
    ])


def _unshared(graph):
    return training_graph_without(graph, CONFIG, "share_layer_norm_sums")


def _ops(graph) -> dict[str, str]:
    return {n.name: n.op for n in graph.nodes}


def test_gamma_and_beta_gradients_are_rows_of_one_sums_node():
    t = training_graph(_net(), CONFIG, check=True)
    ops = _ops(t)
    for layer in ("first", "both"):
        gamma, beta = (t.node(names.grad(f"{layer}/{p}")) for p in ("gamma", "beta"))
        sums = names.batch_sums(names.grad(f"{layer}/gamma"))
        assert (gamma.op, gamma.attrs["row"], gamma.inputs) == ("sums_row", 1, (sums,)), layer
        assert (beta.op, beta.attrs["row"], beta.inputs) == ("sums_row", 0, (sums,)), layer
        node = t.node(sums)
        assert node.op == "layer_norm_grad_sums" and node.shape == (2, 3 if layer == "first"
                                                                    else 6)
    assert t.node(names.batch_sums(names.grad("both/gamma"))).attrs["epsilon"] == 1e-5
    # one parameter: nothing to share; the conv's and dense's bias gradients sum other values
    assert ops[names.grad("gamma_only/gamma")] == "layer_norm_grad_gamma"
    assert ops[names.grad("beta_only/beta")] == "bias_grad"
    assert ops[names.grad("c1/bias")] == ops[names.grad("d/bias")] == "bias_grad"
    assert "layer_norm_grad_gamma" not in {ops[names.grad(f"{v}/gamma")] for v in
                                           ("first", "both")}


def test_nothing_to_share_leaves_the_graph_as_it_is():
    u = _unshared(_net())
    lone = u.with_nodes([n for n in u.nodes if not n.name.startswith(
        (names.grad("first/"), names.grad("both/"), "update/first/", "update/both/"))])
    assert share_layer_norm_sums(lone) is lone


def test_shared_training_step_equals_unshared(rng):
    g = _net()
    shared, unshared = training_graph(g, CONFIG, check=True), _unshared(g)
    assert "layer_norm_grad_sums" not in _ops(unshared).values()
    feeds = {"x": rng.normal(size=(3, 5, 4, 3)) * 2 + 1, names.TARGET: rng.normal(size=(3, 2))}
    results = []
    for t in (shared, unshared):
        backend = NumpyBackend("float64")
        fetch = [n.name for n in t.nodes if n.shape is not None and n.name.startswith("grad/")
                 and not n.name.endswith("/sums")]
        out = run(t, feeds, initial_values(t.state, 3, "float64"), [names.LOSS, *fetch],
                  backend=backend)
        results.append((out, backend.read_state([s.name for s in g.state])))
    (a, state_a), (b, state_b) = results
    assert {f"grad/{v}/{p}" for v in ("first", "both") for p in ("gamma", "beta")} <= set(a)
    for k in set(a) & set(b):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14, err_msg=k)
    for k in state_b:
        np.testing.assert_allclose(state_a[k], state_b[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_data_parallel_keeps_the_rows_and_exchanges_nothing_of_layer_norm():
    t = training_graph(_net(), CONFIG, check=True)
    dp = sync_batchnorm(t)
    assert [p for p in exchange_points(dp)] == []
    assert dp.nodes == t.nodes
