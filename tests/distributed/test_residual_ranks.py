"""Data-parallel training of a residual block, whose batch norm, add and activation train as one
batchnorm_train_add node (passes/fuse_training.py): two ranks (threads) make the same run as one
device, the batch statistics exchanged as before (sync_batchnorm.py)."""

from __future__ import annotations

import numpy as np
from test_threads import assert_same_run

import cnnc
from cnnc.passes.pipeline import training_graph
from cnnc.testing.equivalence import SPEC, train_recorded
from cnnc.testing.threadcomm import ThreadGroup

RESIDUAL_SPEC = SPEC.replace("""\
  - {activation: relu}
  - {maxpool2d: 2}
""", """\
  - {activation: relu, name: stem}
  - {conv2d: [6, 3], padding: same, use_bias: false}
  - {batchnorm: null, name: bn}
  - {add: null, inputs: [stem, bn]}
  - {activation: relu, name: joined}
  - {maxpool2d: 2}
""")


def test_two_ranks_train_a_residual_block_as_one_device():
    assert RESIDUAL_SPEC != SPEC
    graph = training_graph(cnnc.load_spec(RESIDUAL_SPEC))
    assert graph.node("joined").op == "batchnorm_train_add"
    want = train_recorded(steps=4, spec=RESIDUAL_SPEC)
    ranks = ThreadGroup(2).run(lambda comm: train_recorded(comm, steps=4, spec=RESIDUAL_SPEC))
    assert_same_run(ranks[0], want, "2 ranks")
    np.testing.assert_array_equal(ranks[1][0], ranks[0][0])
