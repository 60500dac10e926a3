"""Training pass: the residual add and the activation after a batch norm fused into its
normalisation.

- batchnorm_train whose only reader is an add of two inputs becomes one batchnorm_train_add node
  (cnnc/ir/residual.py) named after the add, reading the add's other operand: a residual
  block's conv -> batchnorm -> add normalises and adds in one pass over memory.
- batchnorm_train (or batchnorm_train_add) whose only reader is an element-wise activation layer
  becomes one node with that activation, named after the activation layer (so its value, y,
  keeps its name): the backends normalise (add) and activate in one pass.
Runs after the backward pass, whose rules read what the fusion keeps: activation_grad reads y
and dy, add passes dy through, and batch norm's gradients read x, its statistics and dy, never
the normalised value itself (a node that does, a parameterised relu's gradient for one, is a
second reader, and then nothing fuses; such a relu never fuses, as its kernel has no
parameters). The batch statistics stay a node of their own, so data-parallel
training (sync_batchnorm.py) exchanges them as before.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.activations import ACTIVATIONS, parameters
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules

NORMALISE_OPS = ("batchnorm_train", "batchnorm_train_add")


def _sole_reader(graph: Graph, value: str, reader: str) -> bool:
    return graph.consumers.get(value) == (reader,) and value not in graph.outputs


def _fuse_add(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "add" or len(node.inputs) != 2:
        return None
    if any(graph.shape_of(v) != node.shape for v in node.inputs):  # a broadcast add
        return None
    for i, value in enumerate(node.inputs):
        bn = graph.node_map.get(value)
        if (bn is None or bn.op != "batchnorm_train" or bn.attrs["activation"] != "linear"
                or not _sole_reader(graph, value, node.name) or bn.shape != node.shape):
            continue
        x, stats, *affine = bn.inputs
        fused = replace(bn, name=node.name, op="batchnorm_train_add",
                        inputs=(x, stats, node.inputs[1 - i], *affine))
        return Rewrite(at=node.name, new=(fused,), drop=(bn.name,))
    return None


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if (node.op != "activation" or not ACTIVATIONS[node.attrs["activation"]].elementwise
            or parameters(node.attrs) or node.inputs[0] not in graph.node_map):
        return None
    bn = graph.node(node.inputs[0])
    if (bn.op not in NORMALISE_OPS or bn.attrs["activation"] != "linear"
            or not _sole_reader(graph, bn.name, node.name)):
        return None
    fused = replace(bn, name=node.name, attrs=bn.attrs.replace(activation=node.attrs["activation"]))
    return Rewrite(at=node.name, new=(fused,), drop=(bn.name,))


RULES = {
    "batchnorm_train + add -> one node adding the residual": _fuse_add,
    "batchnorm_train (+ add) + element-wise activation -> one node": _fuse,
}


def fuse_batchnorm_activation(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
