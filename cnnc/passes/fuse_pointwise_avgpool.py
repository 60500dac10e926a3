"""Inference pass: a 1x1 convolution and the global average pooling reading it as one
pointwise_avgpool node (cnnc/ir/pointwise_avgpool.py), so that the convolution's map (a mobile
network's head: its widest channels, before the classifier) is neither written nor read back,
and the head takes one launch.

A global_avgpool2d node whose input is a conv2d or conv2d_bn node with a 1x1, stride-1 kernel
(no groups, no dilation), or such a convolution reading a gather in place (conv2d_gathered,
conv2d_bn_gathered: fuse_shuffle runs first), with an element-wise activation, read by the
pooling alone and no output, becomes one node under the pooling's name (so outputs keep their
names), reading the convolution's inputs. Runs after
fold_batchnorm and fuse_activation (the convolution is then what it fuses: a batch norm folded
in, the activation applied), after fuse_residual and fold_gate, which leave a residual or gated
convolution (conv2d_add, conv2d_bn_gated, ...) that this leaves alone, and after
fuse_depthwise_pointwise, which keeps a 1x1 convolution reading a depthwise one.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.depthwise_pointwise import is_pointwise
from cnnc.ir.graph import Graph, Node
from cnnc.ir.pointwise_avgpool import CONV_OPS
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "global_avgpool2d" or node.inputs[0] not in graph.node_map:
        return None
    conv = graph.node(node.inputs[0])
    if (conv.op not in CONV_OPS or not is_pointwise(conv.attrs)
            or conv.attrs["activation"] == "softmax"
            or graph.consumers.get(conv.name) != (node.name,) or conv.name in graph.outputs):
        return None
    attrs = Attrs(conv_op=conv.op, conv=conv.attrs, keepdims=node.attrs["keepdims"])
    fused = replace(node, op="pointwise_avgpool", inputs=conv.inputs, attrs=attrs,
                    params=conv.params)
    return Rewrite(at=node.name, new=(fused,), drop=(conv.name,))


RULES = {"1x1 conv + the global average pooling reading it -> one pointwise_avgpool node": _fuse}


def fuse_pointwise_avgpool(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
