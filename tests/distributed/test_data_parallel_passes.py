"""The data-parallel graph passes and backend hooks, each against the single-device graph.

- split_phases: the gradient phase then the update phase (gradients written as state) leave the
  same weights as the one training graph, bit for bit;
- sync_batchnorm: batchnorm_grad_sums + batchnorm_grad_apply compute batchnorm_grad_input (the
  one node it was before share_bn_sums.py), and the parameters' gradients the rank's own;
- exchanges: a value replaced mid-run is what every later node reads, on both backends;
- dropout masks keyed by the example's index in the global batch: a rank holding examples
  [k, k + n) draws the rows of the one-device mask.
"""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.backends.base import get_backend
from cnnc.errors import InternalError
from cnnc.initializers import initial_values
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.data_parallel import GRADIENT_ROLE, split_phases
from cnnc.passes.pipeline import run_pipeline, training_graph, training_pipeline
from cnnc.passes.sync_batchnorm import (
    APPLY_OPS,
    BATCH_STATS,
    SUMS_OPS,
    WEIGHTED_SUM,
    exchange_points,
    sync_batchnorm,
)
from cnnc.testing.equivalence import SPEC

# Dropout on the inputs themselves (never 0), in two layouts: the masks alone make the zeros.
DROPOUT_SPEC = """\
input 6x6x2
d1: dropout 0.5
flatten
d2: dropout 0.3
dense 10 softmax
"""


def _feeds(graph, batch, seed=0):
    rng = np.random.default_rng(seed)
    shape = graph.concrete_shape(graph.inputs[0], batch)
    return {graph.inputs[0]: rng.random(shape, dtype=np.float32) + np.float32(0.5),
            names.TARGET: rng.integers(0, 10, size=batch).astype(np.int32)}


def _fresh(backend_name, graph, seed=4):
    backend = get_backend(backend_name)
    backend.init_state(graph.state, initial_values(graph.state, seed))
    return backend


def test_the_phases_split_the_graph_at_the_optimizer():
    graph = sync_batchnorm(training_graph(cnnc.load_spec(SPEC)))
    phases = split_phases(graph)
    ops = {n.op for n in phases.update.nodes}
    assert ops == {"adam_update"} and phases.update.outputs == ()
    assert "moving_average_update" in {n.op for n in phases.gradient.nodes}
    assert phases.gradient.outputs[:2] == graph.outputs
    assert set(phases.gradient.outputs[2:]) == set(phases.grads)
    assert {s.name for s in phases.grad_state} == set(phases.grads)
    assert all(s.role == GRADIENT_ROLE for s in phases.grad_state)
    points = exchange_points(phases.gradient)
    assert [p.kind for p in points] == [BATCH_STATS, WEIGHTED_SUM]
    assert points[0].rows_per_example == 144  # 12x12 rows per example at the batch norm


def test_two_phases_leave_the_weights_of_one_step(backend):
    spec = cnnc.load_spec(SPEC)
    fused = training_graph(spec)
    phases = split_phases(sync_batchnorm(fused))
    feeds = _feeds(fused, 6)
    one = _fresh(backend, fused)
    want = one.compile(fused, 6).run(feeds, [names.LOSS], step=3, learning_rate=0.01)
    two = _fresh(backend, fused)
    two.init_state(phases.grad_state, initial_values(phases.grad_state, 0))
    out = two.compile(phases.gradient, 6).run(feeds, [names.LOSS, *phases.grads], step=3,
                                              learning_rate=0.01)
    two.write_state({g: out[g] for g in phases.grads})
    two.compile(phases.update, 1).run({}, [], step=3, learning_rate=0.01)
    np.testing.assert_array_equal(out[names.LOSS], want[names.LOSS])
    state = [s.name for s in fused.state]
    a, b = one.read_state(state), two.read_state(state)
    for k in state:
        np.testing.assert_allclose(b[k], a[k], rtol=2e-6, atol=1e-7, err_msg=k)


def _one_node_batch_norm_gradients(spec):
    """The training graph with batch norm's input gradient as one node (its sums inside),
    as before share_bn_sums.py shared them with the parameters' gradients."""
    config = spec.train or TrainConfig()
    passes = [p for p in training_pipeline(loss=config.loss, optimizer=config.optimizer,
                                           seed=config.seed)
              if p.name != "share_batchnorm_sums"]
    return run_pipeline(spec, passes)


def test_batch_norm_gradient_in_two_ops_matches_the_fused_op():
    graph = _one_node_batch_norm_gradients(cnnc.load_spec(SPEC))
    split = sync_batchnorm(graph)
    assert "batchnorm_grad_input" not in {n.op for n in split.nodes}
    grads = [n.name for n in graph.nodes if n.op == "batchnorm_grad_input"]
    assert grads
    outs = []
    for g in (graph, split):
        outs.append(_fresh("numpy", g).compile(g, 5).run(_feeds(g, 5), grads, step=1))
    for name in grads:
        np.testing.assert_allclose(outs[1][name], outs[0][name], rtol=1e-5, atol=1e-7)


def test_the_sync_ops_match_numpy_on_the_device(opencl_status):
    if not opencl_status[0]:
        pytest.skip(opencl_status[1])
    from cnnc.crosscheck import cross_check

    graph = sync_batchnorm(training_graph(cnnc.load_spec(SPEC)))
    report = cross_check(graph, 5, seed=2, step=1)
    checked = {c.op for c in report.checks if c.passed}
    # the sums through the activation after the batch norm (fuse_bn_act_grad.py) here
    split = {n.op for n in graph.nodes if n.op in (*SUMS_OPS, *APPLY_OPS)}
    assert len(split) == 2 and split <= checked
    assert all(c.passed for c in report.checks), [c.node for c in report.checks if not c.passed]


def test_an_exchanged_value_is_what_later_nodes_read(backend):
    graph = training_graph(cnnc.load_spec(SPEC))
    bn = next(n for n in graph.nodes if n.op == "batchnorm_stats")
    moving = next(s.name for s in graph.state if s.name.endswith("moving_mean"))
    momentum = next(n.attrs["momentum"] for n in graph.nodes
                    if n.op == "moving_average_update" and n.inputs[0] == moving)
    feeds = _feeds(graph, 4)
    seen = []

    def shift(value):
        seen.append(value.copy())
        return np.stack([value[0] + 1.0, value[1]])

    def run(exchange):
        backend_ = _fresh(backend, graph)
        out = backend_.compile(graph, 4).run(feeds, [graph.outputs[1]], step=0,
                                             exchange=exchange)
        return out[graph.outputs[1]], backend_.read_state([moving])[moving]

    plain, moving0 = run(None)
    same, _ = run({bn.name: lambda v: v})
    np.testing.assert_array_equal(same, plain)
    _, moving2 = run({bn.name: shift})  # the moving average reads the replaced mean
    assert len(seen) == 1
    np.testing.assert_allclose(moving2 - moving0, (1 - momentum) * np.ones_like(moving0),
                               rtol=1e-4)
    exe = _fresh(backend, graph).compile(graph, 4)
    with pytest.raises(InternalError, match="cannot be exchanged"):
        exe.run(feeds, [], exchange={names.TARGET: shift})


@pytest.mark.parametrize("start, count", [(0, 5), (3, 4), (7, 1)])
def test_dropout_masks_are_keyed_by_the_global_example_index(backend, start, count):
    graph = training_graph(cnnc.load_spec(DROPOUT_SPEC))
    dropouts = [n.name for n in graph.nodes if n.op == "dropout_train"]
    feeds = _feeds(graph, 8)
    keep = {"keep": dropouts} if backend == "opencl" else {}
    whole = _fresh(backend, graph).compile(graph, 8, **keep).run(feeds, dropouts, step=9)
    part = {k: v[start:start + count] for k, v in feeds.items()}
    exe = _fresh(backend, graph).compile(graph, count, **keep)
    got = exe.run(part, dropouts, step=9, first_example=start)
    assert len(dropouts) == 2
    for name in dropouts:
        np.testing.assert_array_equal(got[name] == 0, whole[name][start:start + count] == 0)
