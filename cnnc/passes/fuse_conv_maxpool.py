"""Inference pass: a convolution and the 2x2 max pooling reading it as one conv2d_maxpool node
(cnnc/ir/conv_maxpool.py), so that the convolution's full map is neither written nor read back:
its kernel pools as it stores, and the pooling's launch is gone. An average pooling of such
windows, each whole inside the map, becomes a conv2d_avgpool node the same way (LeNet-5's).

A maxpool2d node whose window the kernels pool as they store (conv_maxpool.pools_in_store: 2x2
at stride 2, no padding before) and whose input is a conv2d, conv2d_bn, conv2d_add or
conv2d_bn_add node with an element-wise activation, read by the pooling alone and no output,
becomes one node under the pooling's name (so outputs keep their names). Runs after
fold_batchnorm, fuse_residual and fuse_activation (the convolution is then all it fuses: a batch
norm folded in, a residual added, the activation applied). Training graphs never see it: their
gradients read the convolution's full map.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.args import Attrs
from cnnc.ir.conv_maxpool import CONV_OPS, FUSED_OF, pools_in_store, stores_pooled
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if (node.op not in FUSED_OF or node.inputs[0] not in graph.node_map
            or not pools_in_store(node.attrs)):
        return None
    conv = graph.node(node.inputs[0])
    if (conv.op not in CONV_OPS or not ACTIVATIONS[conv.attrs["activation"]].elementwise
            or graph.consumers.get(conv.name) != (node.name,) or conv.name in graph.outputs):
        return None
    _, oh, ow, _ = graph.shape_of(conv.name)
    if not stores_pooled(node.op, node.attrs, (oh, ow)):
        return None
    attrs = Attrs(conv_op=conv.op, conv=conv.attrs, pool=node.attrs)
    fused = replace(node, op=FUSED_OF[node.op], inputs=conv.inputs, attrs=attrs,
                    params=conv.params)
    return Rewrite(at=node.name, new=(fused,), drop=(conv.name,))


RULES = {"conv + the 2x2 max or average pooling reading it -> one conv2d_maxpool or "
         "conv2d_avgpool node": _fuse}


def fuse_conv_maxpool(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
