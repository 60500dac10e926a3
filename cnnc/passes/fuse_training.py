"""Training pass: the activation after a batch norm fused into its normalisation.

batchnorm_train whose only reader is an element-wise activation layer becomes one
batchnorm_train node with that activation, named after the activation layer (so its value, y,
keeps its name): the backends normalise and activate in one pass over memory. Runs after the
backward pass, whose rules read what the fusion keeps: activation_grad reads y and dy, and batch
norm's gradients read x, its statistics and dy, never the normalised value itself.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if (node.op != "activation" or not ACTIVATIONS[node.attrs["activation"]].elementwise
            or node.inputs[0] not in graph.node_map):
        return None
    bn = graph.node(node.inputs[0])
    if (bn.op != "batchnorm_train" or bn.attrs["activation"] != "linear"
            or graph.consumers.get(bn.name) != (node.name,) or bn.name in graph.outputs):
        return None
    fused = replace(bn, name=node.name, attrs=bn.attrs.replace(activation=node.attrs["activation"]))
    return Rewrite(at=node.name, new=(fused,), drop=(bn.name,))


RULES = {"batchnorm_train + element-wise activation -> one node": _fuse}


def fuse_batchnorm_activation(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
