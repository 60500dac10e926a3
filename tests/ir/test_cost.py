"""FLOP counts from the op table (cnnc/ir/cost.py), as `cnnc summary` and `cnnc bench` use them."""

from __future__ import annotations

from cnnc.ir.cost import node_flops, total_flops
from cnnc.ir.summary import layer_rows
from cnnc.passes.pipeline import training_graph
from cnnc.testing.nets import chain


def test_a_dense_layer_counts_a_multiply_add_as_two():
    g = chain((4,), ("dense", 3))  # per example: 4 x 3 multiply-adds, 3 bias additions
    assert node_flops(g, g.node("dense")) == 2 * 4 * 3 + 3
    assert node_flops(g, g.node("input_layer")) == 0
    assert total_flops(g) == 27


def test_the_total_is_the_sum_of_the_summary_rows():
    g = chain((8, 8, 2), ("conv2d", 4, 3, {"padding": "same", "activation": "relu"}),
              ("maxpool2d", 2), ("flatten",), ("dense", 5, {"activation": "softmax"}))
    assert total_flops(g) == sum(row[3] for row in layer_rows(g)) > 0


def test_training_ops_add_nothing_to_the_forward_count():
    """bench scales the forward count by three for a training step; the training graph's own
    ops have no FLOP rule, so its total is the forward pass it contains."""
    g = chain((4,), ("dense", 3, {"activation": "softmax"}))
    assert total_flops(training_graph(g)) == total_flops(g)
