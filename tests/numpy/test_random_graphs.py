"""Property tests on random valid graphs (cnnc.testing.graphgen): shapes and gradients."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from cnnc.initializers import initial_values
from cnnc.ir.graph import verify
from cnnc.ir.train_config import TrainConfig
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.testing.gradcheck import GradientCheck
from cnnc.testing.graphgen import graphs
from cnnc.testing.nets import run

BATCH = 3


def _values(graph, rng):
    feeds = {n: rng.normal(size=(BATCH, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = initial_values(graph.state, seed=0, dtype="float64")
    fetch = [n.name for n in graph.nodes if n.shape is not None]
    return run(graph, feeds, state, fetch)


@settings(max_examples=40, deadline=None)
@given(graphs(max_blocks=5))
def test_inferred_shapes_are_the_shapes_that_come_out(graph):
    verify(graph)
    rng = np.random.default_rng(0)
    for g in (graph, inference_graph(graph, check=True)):
        values = _values(g, rng)
        for node in g.nodes:
            want = (BATCH, *node.shape[1:])
            assert values[node.name].shape == want, f"{node.name} ({node.op})"


@settings(max_examples=25, deadline=None)
@given(graphs(max_blocks=4))
def test_inference_pipeline_keeps_the_outputs(graph):
    rng = np.random.default_rng(1)
    feeds = {n: rng.normal(size=(2, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = initial_values(graph.state, seed=0, dtype="float64")
    simplified = inference_graph(graph, check=True)
    assert simplified.outputs == graph.outputs
    before = run(graph, feeds, state)
    after = run(simplified, feeds, state)
    for name in graph.outputs:
        np.testing.assert_allclose(after[name], before[name], rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(graphs(max_blocks=4))
def test_training_graph_verifies_and_gradients_match_finite_differences(graph):
    training_graph(graph, TrainConfig(loss="mean_squared_error"), check=True)
    check = GradientCheck(graph, batch=2, seed=5, step=1)
    report = check.check(entries=2)
    worst = report.worst()
    assert len(report.skipped) <= len(report.entries) // 3 + 1, report.summary()
    assert worst is None or worst.error < 1e-5, report.summary()
