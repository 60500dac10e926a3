"""Training pass: squeeze-and-excitation's input gradient in one pass over memory.

A map x read by a global average pooling and by a product with a per-channel gate (x * gate,
the gate computed from the pooling) has, after the backward pass,

    grad/x/0 = multiply_grad(dm, gate)            dm * gate, the map's size
    grad/x/1 = global_avgpool2d_grad(dpool)       dpool / (H*W) broadcast, the map's size
    grad/x   = add(grad/x/0, grad/x/1)

three passes writing the map's size and one reading two of them; they become one
`excite_grad(dm, gate, dpool)` node named grad/x (cnnc/ir/excite_grad.py), which reads dm once
and writes dx once. Left alone: a part read by anything else or that is a graph output, adds
of three or more gradients, and products whose other operand is not one value per channel (a
map-shaped gate). Runs after fuse_activation_grad, which fuses an add whose sum feeds an
activation's gradient read from its input (that add is then no longer plain) but leaves this
sum to this pass where the derivative is read from y (relu).
"""

from __future__ import annotations

from dataclasses import replace
from math import prod

from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules


def _sole_part(graph: Graph, value: str, add: Node, op: str) -> Node | None:
    node = graph.node_map.get(value)
    if (node is None or node.op != op or graph.consumers.get(value) != (add.name,)
            or value in graph.outputs):
        return None
    return node


def excite_sum(graph: Graph, node: Node) -> Rewrite | None:
    """The rewrite of `node` into one excite_grad node, None where it is no such sum."""
    if node.op != "add" or len(node.inputs) != 2 or node.shape is None or len(node.shape) != 4:
        return None
    for first, second in (node.inputs, node.inputs[::-1]):
        product = _sole_part(graph, first, node, "multiply_grad")
        pooled = _sole_part(graph, second, node, "global_avgpool2d_grad")
        if product is None or pooled is None or first == second:
            continue
        dm, gate = product.inputs
        (dpool,) = pooled.inputs
        channels = node.shape[-1]
        if (graph.shape_of(dm) != node.shape or product.shape != node.shape
                or pooled.shape != node.shape
                or any(prod(graph.shape_of(v)[1:]) != channels
                       or graph.shape_of(v)[-1] != channels for v in (gate, dpool))):
            continue
        fused = replace(node, op="excite_grad", inputs=(dm, gate, dpool), attrs=Attrs())
        return Rewrite(at=node.name, new=(fused,), drop=(product.name, pooled.name))
    return None


RULES = {"dm * gate + the pooling's gradient -> one excite_grad node": excite_sum}


def fuse_excite_grad(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
