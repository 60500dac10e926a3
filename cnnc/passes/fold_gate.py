"""Inference pass: a squeeze-excite scale (x * gate) folded into the convolution that reads it.

multiply(x, gate) of two inputs, where x has the product's shape and the gate broadcasts to it
(a (1, 1, C) squeeze-excite gate, or a map of x's own shape), whose only reader is a conv2d
(conv2d_bn, conv2d_add, conv2d_bn_add) that reads it as its input (not as its residual), becomes
that convolution's gated op (cnnc/ir/gated.py) reading x and the gate: the convolution scales
each input value as it loads it, so the product is never written nor read back. Runs after
fold_batchnorm, fuse_residual, fuse_activation and fuse_merge_activation (so the projection
after a squeeze-excite block is already one conv2d_bn[_add] node, and a multiply followed by an
activation has become multiply_act, which this leaves alone: act(x * g) is no scale). Left alone:
a product with other readers or that is an output (its value is needed anyway), merges of three
or more inputs, and a product both of whose inputs broadcast.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.broadcast import broadcast_shapes
from cnnc.ir.gated import GATED_OF
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules


def _map_and_gate(graph: Graph, mul: Node) -> tuple[str, str] | None:
    """The product's full-shape operand and its gate, the first input preferred as the map."""
    if mul.op != "multiply" or len(mul.inputs) != 2 or mul.name in graph.outputs:
        return None
    a, b = mul.inputs
    shape_a, shape_b = graph.shape_of(a), graph.shape_of(b)
    for x, gate, sx, sg in ((a, b, shape_a, shape_b), (b, a, shape_b, shape_a)):
        if sx == mul.shape and broadcast_shapes((sx, sg)) == sx:
            return x, gate
    return None


def _fold(graph: Graph, node: Node) -> Rewrite | None:
    if node.op not in GATED_OF or node.inputs[0] not in graph.node_map:
        return None
    mul = graph.node(node.inputs[0])
    if graph.consumers.get(mul.name) != (node.name,) or node.inputs.count(mul.name) != 1:
        return None
    operands = _map_and_gate(graph, mul)
    if operands is None:
        return None
    x, gate = operands
    gated = replace(node, op=GATED_OF[node.op], inputs=(x, gate, *node.inputs[1:]))
    return Rewrite(at=node.name, new=(gated,), drop=(mul.name,))


RULES = {"multiply(x, gate) + the convolution reading it -> one gated convolution": _fold}


def fold_gate(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
