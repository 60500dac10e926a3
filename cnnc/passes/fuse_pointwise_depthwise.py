"""Inference pass: a 1x1 convolution and the depthwise convolution reading it as one
pointwise_depthwise node (cnnc/ir/pointwise_depthwise.py), so that the expanded map, an MBConv
or inverted residual block's widest, is neither written nor read back, and the pair takes one
launch.

A strided depthwise_conv2d or depthwise_conv2d_bn node (depth multiplier 1) whose input is a 1x1,
stride-1 conv2d or conv2d_bn node read by it alone and no output becomes one node under the
depthwise's name (so outputs and the depthwise map's other readers, a squeeze-excite block's
pooling and gated projection, keep their names), when the two apply at most one activation
between them other than linear (the fused kernel builds one). Runs after fold_batchnorm and
fuse_activation (the parts are then what they fuse), after fuse_residual and fold_gate (a
residual or gated 1x1 convolution, conv2d_bn_add_gated, ..., is not a part: its op is none of
the plain ones), and after fuse_depthwise_pointwise, which takes a depthwise read by a 1x1
convolution alone first (a depthwise fused there is no longer one here) unless this pass
would pair it with its expansion (`expansion_of`).
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.depthwise_pointwise import DEPTHWISE_OPS, POINTWISE_OPS
from cnnc.ir.graph import Graph, Node
from cnnc.ir.pointwise_depthwise import NAME, fusable
from cnnc.passes.rewrite import Rewrite, apply_rules


def pays(depthwise: Attrs) -> bool:
    """Whether the fused kernel pays for this depthwise part: where it is strided, the expanded
    map the unfused pair writes and reads back is SH * SW times its output (four times at
    stride 2), and the fused kernel, which computes each expanded value once, won clearly; at
    stride 1 it was not shown to. Measured on pocl (2-core Intel Xeon AVX-512, shared, load
    6-9), efficientnet_mini's 14x14x16 -> 96, 3x3 stride-2 pair alone at batch 256: 1.2-1.4x
    faster fused (launch minima, 24 paired rounds); its 7x7x24 -> 144, 5x5 stride-1 pair alone
    0.85x (40 rounds); the whole forward pass (benchmarks/mbconv.py) 1.10-1.20x with the
    strided pair fused, 1.12-1.16x with both (within the ~5% noise of the strided-only run),
    and at batch 1 1.03-1.04x and 1.07x; mobilenetv3_mini's stride-1 5x5 24 -> 72 pair fused:
    1.00x."""
    return depthwise["strides"] != (1, 1)


def expansion_of(graph: Graph, node: Node) -> Node | None:
    """The 1x1 convolution this pass would fuse with the depthwise `node`, or None."""
    if node.op not in DEPTHWISE_OPS or node.inputs[0] not in graph.node_map:
        return None
    pw = graph.node(node.inputs[0])
    if (pw.op not in POINTWISE_OPS or graph.consumers.get(pw.name) != (node.name,)
            or pw.name in graph.outputs or not fusable(pw.attrs, node.attrs)
            or not pays(node.attrs)):
        return None
    return pw


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    pw = expansion_of(graph, node)
    if pw is None:
        return None
    attrs = Attrs(pointwise_op=pw.op, pointwise=pw.attrs, depthwise_op=node.op,
                  depthwise=node.attrs)
    fused = replace(node, op=NAME, inputs=pw.inputs, attrs=attrs, params=pw.params + node.params)
    return Rewrite(at=node.name, new=(fused,), drop=(pw.name,))


RULES = {"1x1 conv + the depthwise conv reading it -> one pointwise_depthwise node": _fuse}


def fuse_pointwise_depthwise(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
