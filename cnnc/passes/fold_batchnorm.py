"""Inference pass: batch norm folded into the convolution or dense layer before it.

conv2d (depthwise_conv2d, dense), left linear, whose only reader is a batchnorm becomes one
`conv2d_bn` (`depthwise_conv2d_bn`, `dense_bn`: FOLDED_LAYER) node named after the batch norm
(so outputs keep their names), reading the layer's and the batch norm's state as they are
(cnnc/ir/fused.py): the backends fold from the live state (NumPy on every run, OpenCL once per
change of the weights: plan.py's hoisted launches), so nothing here reads or copies a weight.
Runs before fuse_activation, which then fuses an activation after the batch norm into the same
node: conv2d -> batchnorm -> relu is one launch.
Training graphs never see it (batch norm uses the batch's statistics there).
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.fused import FOLDED_LAYER
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules


def folds_into(graph: Graph, node: Node) -> Node | None:
    """The layer a batchnorm node folds into at inference, or None: a layer that has a folded
    op (FOLDED_LAYER), left linear, read by this batch norm only and not an output. The ONNX
    export (--fold-bn) folds the same batch norms, by this rule."""
    if node.op != "batchnorm" or node.inputs[0] not in graph.node_map:
        return None
    layer = graph.node(node.inputs[0])
    if (layer.op not in FOLDED_LAYER or layer.attrs["activation"] != "linear"
            or graph.consumers.get(layer.name) != (node.name,)
            or layer.name in graph.outputs):
        return None
    return layer


def _fold(graph: Graph, node: Node) -> Rewrite | None:
    layer = folds_into(graph, node)
    if layer is None:
        return None
    bn = {k: node.attrs[k] for k in ("epsilon", "center", "scale")}
    fused = replace(layer, name=node.name, op=FOLDED_LAYER[layer.op],
                    attrs=layer.attrs.replace(**bn), params=layer.params + node.params,
                    shape=node.shape)
    return Rewrite(at=node.name, new=(fused,), drop=(layer.name,))


RULES = {"conv2d/dense + batchnorm -> one node with folded weights": _fold}


def fold_batchnorm(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
