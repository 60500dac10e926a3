"""Inference pass: a max pooling and the channel concatenation it alone reads as one
maxpool2d_concat node (cnnc/ir/pool_concat.py), so that the concatenated map (an Inception
block's output, pooled before the next block) is neither written nor read back, and the
concatenation takes no launch of its own.

A maxpool2d node whose input is a concatenate node of 2 to 4 NHWC maps along the channels,
read by the pooling alone and no output, becomes one node under the pooling's name (so outputs
keep their names). Runs after fuse_conv_maxpool (a convolution's pooling is taken there first)
and fuse_conv_concat (a concatenation read by a convolution is taken there). Training graphs
never see it: their gradients split the concatenation's gradient.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node
from cnnc.ir.pool_concat import MAX_PARTS
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "maxpool2d" or node.inputs[0] not in graph.node_map:
        return None
    cat = graph.node(node.inputs[0])
    if (cat.op != "concatenate" or not 2 <= len(cat.inputs) <= MAX_PARTS
            or cat.attrs["axis"] not in (-1, 3)
            or graph.consumers.get(cat.name) != (node.name,) or cat.name in graph.outputs
            or any(len(graph.shape_of(x)) != 4 for x in cat.inputs)):
        return None
    attrs = Attrs(pool=node.attrs, concat=cat.attrs)
    fused = replace(node, op="maxpool2d_concat", inputs=cat.inputs, attrs=attrs)
    return Rewrite(at=node.name, new=(fused,), drop=(cat.name,))


RULES = {"max pooling + the channel concatenation it alone reads -> one maxpool2d_concat "
         "node": _fuse}


def fuse_pool_concat(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
