"""What the inference fusion passes' tests share: a graph run with and without one pass must give
the same outputs, exactly (tests/numpy/test_fuse_*.py)."""

from __future__ import annotations

import numpy as np
from test_fold_batchnorm import random_state

from cnnc.passes.pipeline import inference_graph, inference_pipeline, run_pipeline
from cnnc.testing.nets import run


def same_outputs(graph, without: str, seed: int = 0, batch: int = 3):
    """The inference graph of `graph`, checked to compute what the pipeline without the pass
    `without` computes, bit for bit, on random inputs and state."""
    fused = inference_graph(graph, check=True)
    unfused = run_pipeline(graph, [p for p in inference_pipeline() if p.name != without])
    rng = np.random.default_rng(seed)
    feeds = {n: rng.normal(size=(batch, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = random_state(graph, seed + 1)
    before, after = run(unfused, feeds, state), run(fused, feeds, state)
    for name in graph.outputs:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    return fused


def ops(graph) -> dict[str, str]:
    """Each computing node's op, by name."""
    return {n.name: n.op for n in graph.nodes if n.op != "input"}
