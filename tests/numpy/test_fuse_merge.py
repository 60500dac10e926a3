"""Inference fusion of a merge and the activation after it (cnnc/passes/fuse_merge.py): the
squeeze-excite block's x * gate and an add then relu become one node, with equal outputs."""

from __future__ import annotations

import numpy as np

from cnnc.frontend.dsl import load_dsl
from cnnc.passes.fuse_merge import fuse_merge_activation
from cnnc.passes.pipeline import inference_graph
from cnnc.testing.gradcheck import random_weights
from cnnc.testing.nets import run

SE = """
input 5x4x6
x: conv2d 6 3 same
global_avgpool2d keepdims=true
conv2d 2 1 relu
gate: conv2d 6 1 sigmoid
se: multiply(x, gate)
out: activation relu6
join: add(out, x)
r: relu
"""


def test_the_gate_and_the_activation_after_it_are_one_node_with_equal_outputs(rng):
    g = load_dsl(SE)
    inf = inference_graph(g)
    ops = {n.name: n.op for n in inf.nodes}
    assert ops["out"] == "multiply_act" and inf.node("out").attrs["activation"] == "relu6"
    assert inf.node("out").inputs == ("x", "gate")
    assert ops["r"] == "add_act" and "se" not in ops and "join" not in ops
    w = random_weights(g, rng)
    x = rng.normal(size=(2, 5, 4, 6))
    want = run(g, {"input_layer": x}, w)["r"]
    np.testing.assert_allclose(run(inf, {"input_layer": x}, w)["r"], want, rtol=1e-12)


def test_a_merge_read_twice_or_an_output_or_before_softmax_stays():
    g = load_dsl("input 4\na: dense 4\nm: multiply(input_layer, a)\nb: relu\nc: dense(m) 2\n"
                 "output b, c")
    assert fuse_merge_activation(g) == g  # m has two readers
    g = load_dsl("input 4\na: dense 4\nm: multiply(input_layer, a)\nactivation softmax")
    assert fuse_merge_activation(g) == g  # softmax spans a row
    g = load_dsl("input 4\na: dense 4\nm: multiply(input_layer, a)\nb: relu\noutput m, b")
    assert fuse_merge_activation(g) == g  # m is an output
