"""Loss kernels on labels that are not class ids: NaN for that row, never a read out of bounds.

The NumPy backend rejects such labels with an InputError before computing; the device computes
without looking at the host, so losses.cl marks the row instead (see its header).
"""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import CASES
from test_ops import train_graph

from cnnc.crosscheck import random_feeds
from cnnc.initializers import initial_values


@pytest.mark.parametrize(
    "case_name,loss_op",
    [
        ("dense_stack_dropout", "softmax_cross_entropy"),
        ("dense_probabilities_sparse", "cross_entropy"),
    ],
)
def test_a_label_outside_the_classes_gives_nan_for_its_row(case_name, loss_op, backend):
    graph = train_graph(next(c for c in CASES if c.name == case_name))
    loss = next(n for n in graph.nodes if n.op == loss_op)
    grad = next(n.name for n in graph.nodes if n.op == f"{loss_op}_grad")
    assert loss.attrs["sparse"]
    batch = 4
    feeds = random_feeds(graph, batch, 0)
    classes = graph.shape_of(loss.inputs[0])[-1]
    labels = feeds[loss.inputs[1]]
    labels[1], labels[3] = classes, -1
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exe = backend.compile(graph, batch, keep=[grad])
    out = exe.run(feeds, [loss.name, grad])
    assert np.isnan(out[loss.name]).all()
    rows_with_nan = np.isnan(out[grad]).reshape(batch, -1).any(axis=1)
    assert rows_with_nan.tolist() == [False, True, False, True]
    assert np.isfinite(out[grad][[0, 2]]).all()
