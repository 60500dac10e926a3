"""Inference pass: a depthwise convolution and the 1x1 convolution reading it as one
depthwise_pointwise node (cnnc/ir/depthwise_pointwise.py), so that the depthwise map, a
MobileNet block's widest, is neither written nor read back, and the block takes one launch.

A conv2d or conv2d_bn node with a 1x1, stride-1 kernel (no groups, no dilation) whose input is
a depthwise_conv2d or depthwise_conv2d_bn node read by it alone and no output becomes one node
under the 1x1 convolution's name (so outputs keep their names), when the two apply at most one
activation between them other than linear (the fused kernel builds one). Runs after
fold_batchnorm and fuse_activation (the parts are then what they fuse: a batch norm folded in,
the activation applied), and after fuse_residual and fold_gate, which leave a residual or
gated projection (conv2d_add, conv2d_bn_gated, ...) that this leaves alone: a squeeze-excite
block's depthwise map is read by its pooling too.

A strided depthwise between an expansion and a projection goes to its expansion instead
(fuse_pointwise_depthwise, which runs next): that pair's expanded map is SH * SW times the
depthwise's output. Measured on pocl (2-core Intel Xeon AVX-512), whole forward passes at batch
256: mobilenetv3_mini 1.10x as fast (its 14x14x16 -> 48, 3x3 stride-2 block), shufflenet_mini
1.05x.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.depthwise_pointwise import DEPTHWISE_OPS, POINTWISE_OPS, is_pointwise, one_activation
from cnnc.ir.graph import Graph, Node
from cnnc.passes.fuse_pointwise_depthwise import expansion_of
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if node.op not in POINTWISE_OPS or not is_pointwise(node.attrs):
        return None
    source = node.inputs[0]
    if source not in graph.node_map:
        return None
    dw = graph.node(source)
    if (dw.op not in DEPTHWISE_OPS or graph.consumers.get(dw.name) != (node.name,)
            or dw.name in graph.outputs or not one_activation(dw.attrs, node.attrs)
            or expansion_of(graph, dw) is not None):
        return None
    attrs = Attrs(depthwise_op=dw.op, depthwise=dw.attrs, pointwise_op=node.op,
                  pointwise=node.attrs)
    fused = replace(node, op="depthwise_pointwise", inputs=dw.inputs, attrs=attrs,
                    params=dw.params + node.params)
    return Rewrite(at=node.name, new=(fused,), drop=(dw.name,))


RULES = {"depthwise conv + the 1x1 conv reading it -> one depthwise_pointwise node": _fuse}


def fuse_depthwise_pointwise(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
