"""Inference simplifications as rewrite rules, and dead-code elimination.

- remove_dropout: dropout is the identity at inference; its readers read its input. (A dropout
  that is itself an output stays, so that outputs keep their names; it runs as the identity.)
- fuse_activation: an op that fuses an activation (conv2d, dense: `fuses_activation` in the op
  table), left linear and followed by an activation layer that a name alone says (a relu with
  parameters only when they are exactly those of relu6 or leaky_relu:
  `activations.fused_name`), becomes one node with that activation, named after the activation layer (so outputs keep their names), when nothing
  else reads the pre-activation value and the op accepts that activation (a residual op takes
  no softmax).
- dead_code_elimination: drops nodes that neither lead to an output, nor are updates (side
  effects), nor are gradients someone may fetch. Inputs always stay (they are fed).
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.activations import fused_name
from cnnc.ir.args import ArgError
from cnnc.ir.graph import Graph, Node
from cnnc.passes import names
from cnnc.passes.rewrite import Rewrite, Rule, apply_rules


def _remove_dropout(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "dropout" or node.name in graph.outputs:
        return None  # an output keeps its name: there it stays, as the identity
    return Rewrite(at=node.name, redirect={node.name: node.inputs[0]})


def _fuse_activation(graph: Graph, node: Node) -> Rewrite | None:
    act = fused_name(node.attrs) if node.op == "activation" else None
    if act is None or node.inputs[0] not in graph.node_map:
        return None
    producer = graph.node(node.inputs[0])
    if (not producer.opdef.fuses_activation or producer.attrs["activation"] != "linear"
            or graph.consumers.get(producer.name) != (node.name,)
            or producer.name in graph.outputs):
        return None
    attrs = producer.attrs.replace(activation=act)
    try:  # an op may refuse an activation (residual ops: softmax)
        producer.opdef.check(attrs)
    except ArgError:
        return None
    fused = replace(producer, name=node.name, attrs=attrs)
    return Rewrite(at=node.name, new=(fused,), drop=(producer.name,))


INFERENCE_RULES: dict[str, dict[str, Rule]] = {
    "remove_dropout": {"dropout is the identity at inference": _remove_dropout},
    "fuse_activation": {"conv2d/dense + activation -> one node": _fuse_activation},
}


def remove_dropout(graph: Graph) -> Graph:
    return apply_rules(graph, INFERENCE_RULES["remove_dropout"])


def fuse_activation(graph: Graph) -> Graph:
    return apply_rules(graph, INFERENCE_RULES["fuse_activation"])


def dead_code_elimination(graph: Graph) -> Graph:
    live = set(graph.outputs)
    for node in graph.nodes:
        if node.shape is None or names.is_gradient(node.name) or node.op == "input":
            live.add(node.name)
    for node in reversed(graph.nodes):
        if node.name in live:
            live.update(node.operands)
    kept = [n for n in graph.nodes if n.name in live]
    return graph if len(kept) == len(graph.nodes) else graph.with_nodes(kept)
