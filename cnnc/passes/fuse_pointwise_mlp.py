"""Inference pass: a 1x1 convolution and the 1x1 convolution reading it as one pointwise_mlp
node (cnnc/ir/pointwise_mlp.py), so that the expansion's map (an inverted bottleneck's hidden
layer, 4x the block's channels in a ConvNeXt block) is neither written nor read back, and the
block's MLP takes one launch.

A conv2d or conv2d_bn node with a 1x1, stride-1 kernel (no groups, no dilation), or its
residual op (conv2d_add, conv2d_bn_add: fuse_residual's), whose first input is another such
conv2d or conv2d_bn node read by it alone (not as its residual too) and no output, becomes one
node under the projection's name (so outputs keep their names), when both activations are
element-wise and at most one is other than linear (the fused kernel builds one ACTIVATE).
Training graphs keep the two nodes (their gradients read the hidden map): this pass is in the
inference pipeline only. Runs last of the fusions, after fold_batchnorm, fuse_residual and
fuse_activation (the parts are then what they fuse) and after every fusion that takes a 1x1
convolution (fuse_depthwise_pointwise, fuse_pointwise_avgpool, fuse_conv_maxpool,
fuse_conv_concat), whose graphs this leaves as they were.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.depthwise_pointwise import is_pointwise
from cnnc.ir.graph import Graph, Node
from cnnc.ir.pointwise_mlp import EXPAND_OPS, PROJECT_OPS, fusable_activations
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if node.op not in PROJECT_OPS or not is_pointwise(node.attrs):
        return None
    source = node.inputs[0]
    if source not in graph.node_map:
        return None
    expand = graph.node(source)
    if (expand.op not in EXPAND_OPS or not is_pointwise(expand.attrs)
            or graph.consumers.get(expand.name) != (node.name,)
            or source in node.inputs[1:] or expand.name in graph.outputs
            or not fusable_activations(expand.attrs, node.attrs)):
        return None
    attrs = Attrs(expand_op=expand.op, expand=expand.attrs, project_op=node.op,
                  project=node.attrs)
    fused = replace(node, op="pointwise_mlp", inputs=(*expand.inputs, *node.inputs[1:]),
                    attrs=attrs, params=expand.params + node.params)
    return Rewrite(at=node.name, new=(fused,), drop=(expand.name,))


RULES = {"1x1 conv + the 1x1 conv reading it alone -> one pointwise_mlp node": _fuse}


def fuse_pointwise_mlp(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
