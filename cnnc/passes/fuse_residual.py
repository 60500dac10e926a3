"""Inference pass: a residual add fused into the convolution or dense layer that feeds it.

add(a, b) of two inputs, one of which is a conv2d, conv2d_bn, dense or dense_bn node left
linear whose only reader is this add, becomes one residual node (cnnc/ir/residual.py: conv2d_add
and kin) named after the add (so its readers and outputs keep their names), reading the layer's
input and the add's other operand: act(layer(x) + other) is one launch whose epilogue adds the
other operand as it stores. Runs after fold_batchnorm (so conv -> batchnorm -> add fuses) and
before fuse_activation, which then fuses the activation after the add into the same node when
it is element-wise (residual ops refuse softmax). Where both operands qualify, the first is
fused. Left alone: adds of three or more inputs, a layer with an activation of its own (act(conv)
+ other is not act(conv + other)), a layer whose value something else reads or that is an
output (its value would be lost), and operands of different shapes (add never broadcasts; the
check is kept so that a change there cannot make this pass wrong). Training graphs never see it.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.graph import Graph, Node
from cnnc.ir.residual import RESIDUAL_OF
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fusable(graph: Graph, add: Node, value: str) -> bool:
    if value not in graph.node_map:
        return False
    layer = graph.node(value)
    return (layer.op in RESIDUAL_OF and layer.attrs["activation"] == "linear"
            and graph.consumers.get(layer.name) == (add.name,)
            and layer.name not in graph.outputs and layer.shape == add.shape)


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "add" or len(node.inputs) != 2:
        return None
    if any(graph.shape_of(v) != node.shape for v in node.inputs):
        return None
    for i, value in enumerate(node.inputs):
        if _fusable(graph, node, value):
            layer = graph.node(value)
            other = node.inputs[1 - i]
            fused = replace(layer, name=node.name, op=RESIDUAL_OF[layer.op],
                            inputs=(*layer.inputs, other), shape=node.shape)
            return Rewrite(at=node.name, new=(fused,), drop=(layer.name,))
    return None


RULES = {"conv2d/dense (+ folded batchnorm) + add -> one node adding the residual": _fuse}


def fuse_residual(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
