"""Inference pass: a dense layer and the softmax head that alone reads it as one dense_pair node
(cnnc/ir/dense_pair.py), so that at a few rows a classifier's last two layers take one launch:
at batch 1, in a steady stream of passes, a launch costs more than such a layer's arithmetic
(lenet5 on the 2-core Intel Xeon, pocl 3.1: leaving out the 120 -> 84 layer's launch took 5-9 us
off a 50-66 us pass).

A dense node with a softmax reading a dense node with an element-wise activation, read by the
head alone and no output, becomes one node under the head's name (so outputs keep their
names). Runs after fuse_activation (the activations are then the layers' own) and
remove_dropout (a dropout between them is gone). Whether the pair runs as one launch depends
on the rows and the layer's size, so the binder decides (bind_dense_pair.py), unfusing it
where the launch does not apply.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "dense" or node.attrs["activation"] != "softmax":
        return None
    x = node.inputs[0]
    if x not in graph.node_map or x in graph.outputs or graph.consumers.get(x) != (node.name,):
        return None
    hidden = graph.node(x)
    if hidden.op != "dense" or not ACTIVATIONS[hidden.attrs["activation"]].elementwise:
        return None
    attrs = Attrs(hidden=hidden.attrs, head=node.attrs, hidden_name=hidden.name)
    fused = replace(node, op="dense_pair", inputs=hidden.inputs, attrs=attrs,
                    params=hidden.params + node.params)
    return Rewrite(at=node.name, new=(fused,), drop=(hidden.name,))


RULES = {"dense layer + the softmax head reading it -> one dense_pair node": _fuse}


def fuse_dense_pair(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
