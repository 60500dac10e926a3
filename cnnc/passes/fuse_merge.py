"""Inference fusion of a merge and the activation after it (cnnc/passes, after fuse_activation):
the merge applies it as it stores (cnnc/ir/merges.py FUSED_MERGE), so a squeeze-excite block's
x * gate followed by an activation, or an add and relu that fuse_residual left (no conv or dense
right before), is one pass over memory instead of two."""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.activations import ACTIVATIONS, fused_name
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node
from cnnc.ir.merges import FUSED_MERGE
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    act = fused_name(node.attrs) if node.op == "activation" else None
    if act is None or not ACTIVATIONS[act].elementwise or node.inputs[0] not in graph.node_map:
        return None
    merge = graph.node(node.inputs[0])
    if (merge.op not in FUSED_MERGE or graph.consumers.get(merge.name) != (node.name,)
            or merge.name in graph.outputs):
        return None
    fused = replace(merge, name=node.name, op=FUSED_MERGE[merge.op],
                    attrs=Attrs(activation=act))
    return Rewrite(at=node.name, new=(fused,), drop=(merge.name,))


RULES = {"merge + element-wise activation -> one node applying it as it stores": _fuse}


def fuse_merge_activation(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
