"""Inference pass: a depthwise convolution and the layer normalisation over the channels
reading it as one depthwise_layer_norm node (cnnc/ir/depthwise_layer_norm.py), so that the
depthwise map (a ConvNeXt block's: depthwise 7x7 -> LayerNorm) is neither written nor read
back, and the pair takes one launch.

A layer_norm node whose input is a depthwise_conv2d node read by it alone and no output becomes
one node under the layer norm's name (so outputs keep their names), where the kernel can hold a
pixel's channels (`fusable`). Runs after fuse_activation (the depthwise part's activation is
then in its attributes) and fuse_depthwise_pointwise, which takes the depthwise convolutions a
1x1 convolution reads: the two never compete for one node.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.depthwise_layer_norm import NAME, fusable
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "layer_norm" or node.inputs[0] not in graph.node_map:
        return None
    dw = graph.node(node.inputs[0])
    if (dw.op != "depthwise_conv2d" or graph.consumers.get(dw.name) != (node.name,)
            or dw.name in graph.outputs or dw.shape is None
            or not fusable(dw.attrs, node.attrs, dw.shape[-1])):
        return None
    fused = replace(node, op=NAME, inputs=dw.inputs,
                    attrs=Attrs(depthwise=dw.attrs, layer_norm=node.attrs),
                    params=dw.params + node.params)
    return Rewrite(at=node.name, new=(fused,), drop=(dw.name,))


RULES = {"depthwise conv + the layer norm reading it -> one depthwise_layer_norm node": _fuse}


def fuse_depthwise_layer_norm(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
