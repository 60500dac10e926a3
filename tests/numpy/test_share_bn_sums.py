"""Batch norm's batch sums shared by its input's and parameters' gradients
(cnnc/passes/share_bn_sums.py): which graphs share, that a training step computes the same loss,
gradients and updates with and without the sharing, and that data-parallel training sums the
parameters' gradients from the rank's own batch again (passes/sync_batchnorm.py)."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy import NumpyBackend
from cnnc.initializers import initial_values
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph
from cnnc.passes.share_bn_sums import share_batchnorm_sums
from cnnc.passes.sync_batchnorm import exchange_points, sync_batchnorm
from cnnc.testing.nets import run, training_graph_without

CONFIG = TrainConfig(loss="mean_squared_error")


def _net():
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    return lower("net", [
        L("input", [(5, 4, 3)], name="x"),
        L("conv2d", [6, 3], {"padding": "same", "use_bias": False}, name="c1"),
        L("batchnorm", [], name="both"),  # gamma and beta; no activation after it, which
        # would take its gradient into the sums (fuse_bn_act_grad.py, test_fuse_bn_act_grad.py)
        L("conv2d", [4, 1], name="c2"),
        L("batchnorm", [], {"scale": False}, name="beta_only"),
        L("conv2d", [5, 1], name="c3"),
        L("batchnorm", [], {"center": False, "scale": False}, name="neither"),
        L("flatten", name="f"),
        L("dense", [2], name="d"),
    ])


def _unshared(graph):
    return training_graph_without(graph, CONFIG, "share_batchnorm_sums")


def _ops(graph) -> dict[str, str]:
    return {n.name: n.op for n in graph.nodes}


def test_parameter_gradients_are_rows_of_the_input_gradients_sums():
    t = training_graph(_net(), CONFIG, check=True)
    ops = _ops(t)
    both, beta_only = (names.grad(v) for v in ("c1", "c2"))
    assert ops[names.batch_sums(both)] == "batchnorm_grad_sums"
    assert ops[both] == ops[beta_only] == "batchnorm_grad_apply"
    for param, row in (("both/beta", 0), ("both/gamma", 1), ("beta_only/beta", 0)):
        node = t.node(names.grad(param))
        assert (node.op, node.attrs["row"]) == ("sums_row", row), param
    sums = t.node(names.grad("both/gamma")).inputs[0]
    assert sums == names.batch_sums(both)
    assert t.node(names.grad("beta_only/beta")).inputs[0] == names.batch_sums(beta_only)
    # no parameter gradient to share with: the one node, its sums inside
    assert ops[names.grad("c3")] == "batchnorm_grad_input"
    assert "batchnorm_grad_gamma" not in ops.values()
    # the convolutions' own bias gradients sum other values
    assert ops[names.grad("c2/bias")] == "bias_grad"


def test_nothing_to_share_leaves_the_graph_as_it_is():
    u = _unshared(_net())
    lone = u.with_nodes([n for n in u.nodes if not n.name.startswith(
        (names.grad("both/"), names.grad("beta_only/"), "update/both/", "update/beta_only/"))])
    assert share_batchnorm_sums(lone) is lone


def test_shared_training_step_equals_unshared(rng):
    g = _net()
    shared, unshared = training_graph(g, CONFIG, check=True), _unshared(g)
    assert "sums_row" not in _ops(unshared).values()
    feeds = {"x": rng.normal(size=(3, 5, 4, 3)) * 2, names.TARGET: rng.normal(size=(3, 2))}
    results = []
    for t in (shared, unshared):
        backend = NumpyBackend("float64")
        fetch = [n.name for n in t.nodes if n.shape is not None and n.name.startswith("grad/")
                 and not n.name.endswith("/sums")]
        out = run(t, feeds, initial_values(t.state, 3, "float64"), [names.LOSS, *fetch],
                  backend=backend)
        results.append((out, backend.read_state([s.name for s in g.state])))
    (a, state_a), (b, state_b) = results
    assert {"grad/both/gamma", "grad/both/beta", "grad/beta_only/beta"} <= set(a) & set(b)
    for k in set(a) & set(b):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14, err_msg=k)
    for k in state_b:
        np.testing.assert_allclose(state_a[k], state_b[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_data_parallel_sums_the_parameters_gradients_from_the_ranks_own_batch():
    """The exchanged sums are the global batch's; parameters' gradients are all-reduced later,
    so they must not read the exchanged sums (they would count every rank's share twice)."""
    dp = sync_batchnorm(training_graph(_net(), CONFIG, check=True))
    ops = _ops(dp)
    assert "sums_row" not in ops.values()
    assert ops[names.grad("both/gamma")] == "batchnorm_grad_gamma"
    assert ops[names.grad("both/beta")] == ops[names.grad("beta_only/beta")] == "bias_grad"
    exchanged = {p.value for p in exchange_points(dp) if p.kind == "weighted_sum"}
    assert exchanged == {names.batch_sums(names.grad(v)) for v in ("c1", "c2", "c3")}
    # node for node what data-parallel training ran before the sharing
    assert dp.nodes == sync_batchnorm(_unshared(_net())).nodes


def test_data_parallel_sums_through_an_activation_have_a_local_copy():
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    t = training_graph(lower("net", [
        L("input", [(5, 4, 3)], name="x"),
        L("conv2d", [6, 3], {"padding": "same", "use_bias": False}, name="c1"),
        L("batchnorm", [], name="bn"),
        L("activation", ["silu"], name="a"),
        L("flatten", name="f"),
        L("dense", [2], name="d"),
    ]), CONFIG, check=True)
    dp = sync_batchnorm(t)
    sums = names.batch_sums(names.grad("c1"))
    assert dp.node(sums).op == "batchnorm_act_grad_sums"
    exchanged = {p.value for p in exchange_points(dp) if p.kind == "weighted_sum"}
    assert exchanged == {sums}
    for param in ("bn/gamma", "bn/beta"):
        row = dp.node(names.grad(param))
        assert row.op == "sums_row" and row.inputs == (f"{sums}/local",)
    copy, original = dp.node(f"{sums}/local"), dp.node(sums)
    assert (copy.op, copy.inputs, copy.attrs) == (original.op, original.inputs, original.attrs)


def test_data_parallel_step_equals_one_device_step_on_one_rank(rng):
    """On one rank nothing is exchanged: the rows of the local copies are the same values."""
    g = _net()
    one, dp = training_graph(g, CONFIG, check=True), None
    dp = sync_batchnorm(one)
    feeds = {"x": rng.normal(size=(3, 5, 4, 3)), names.TARGET: rng.normal(size=(3, 2))}
    fetch = [names.LOSS, *(names.grad(p) for p in ("both/gamma", "both/beta", "c1"))]
    a, b = (run(t, feeds, initial_values(t.state, 3, "float64"), fetch,
                backend=NumpyBackend("float64")) for t in (one, dp))
    for k in fetch:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
