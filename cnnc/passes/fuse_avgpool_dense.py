"""Inference pass: a global average pooling and the dense layer reading it as one avgpool_dense
node (cnnc/ir/avgpool_dense.py), so that a classifier's head (pooling, dense, softmax) can take
one launch: at batch 1 the pooling's own launch cost more than its arithmetic.

A dense node whose input is a global_avgpool2d node without keepdims, read by the dense layer
alone and no output, becomes one node under the dense layer's name (so outputs keep their
names). Runs after remove_dropout (a dropout between them is gone) and after
fuse_pointwise_avgpool, which takes a pooling of a 1x1 convolution first (that fusion saves
writing the convolution's whole map, this one a launch).
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "dense" or node.inputs[0] not in graph.node_map:
        return None
    pool = graph.node(node.inputs[0])
    if (pool.op != "global_avgpool2d" or pool.attrs["keepdims"]
            or graph.consumers.get(pool.name) != (node.name,) or pool.name in graph.outputs):
        return None
    fused = replace(node, op="avgpool_dense", inputs=pool.inputs,
                    attrs=Attrs(dense=node.attrs))
    return Rewrite(at=node.name, new=(fused,), drop=(pool.name,))


RULES = {"global average pooling + the dense layer reading it -> one avgpool_dense node": _fuse}


def fuse_avgpool_dense(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
