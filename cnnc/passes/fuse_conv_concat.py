"""Inference pass: a convolution and the channel concatenation it alone reads as one
conv2d_concat node (cnnc/ir/conv_concat.py), taking in each part's nearest upsampling that
only the concatenation reads, so that neither the concatenated nor the upsampled map is written:
the convolution's kernel reads the channels where they lie (a U-Net decoder's skips).

A conv2d or conv2d_bn node (one input, after fold_batchnorm and fuse_activation) whose input is
a concatenate node of two 4-D maps along the channels, read by the convolution alone and no
output, becomes one node under the convolution's name; a part that is an upsampling2d node
(nearest) read by the concatenation alone and no output is read before its upsampling. Training
graphs never see it: their gradients split the concatenation's gradient.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.conv_concat import CONV_OPS, NO_UP
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules


def _only_reader(graph: Graph, value: str, reader: str) -> bool:
    return graph.consumers.get(value) == (reader,) and value not in graph.outputs


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if (node.op not in CONV_OPS or len(node.inputs) != 1
            or node.inputs[0] not in graph.node_map):
        return None
    cat = graph.node(node.inputs[0])
    if (cat.op != "concatenate" or len(cat.inputs) != 2 or cat.attrs["axis"] not in (-1, 3)
            or not _only_reader(graph, cat.name, node.name)
            or any(len(graph.shape_of(x)) != 4 for x in cat.inputs)):
        return None
    inputs, ups, drop = [], [], [cat.name]
    for x in cat.inputs:
        part = graph.node_map.get(x)
        if (part is not None and part.op == "upsampling2d"
                and part.attrs["interpolation"] == "nearest"
                and cat.inputs.count(x) == 1 and _only_reader(graph, x, cat.name)):
            inputs.append(part.inputs[0])
            ups.append(tuple(part.attrs["size"]))
            drop.append(part.name)
        else:
            inputs.append(x)
            ups.append(NO_UP)
    attrs = Attrs(conv_op=node.op, conv=node.attrs, concat=cat.attrs, ups=tuple(ups))
    fused = replace(node, op="conv2d_concat", inputs=tuple(inputs), attrs=attrs)
    return Rewrite(at=node.name, new=(fused,), drop=tuple(drop))


RULES = {"conv + the concatenation (of maps, some upsampled) it alone reads -> one "
         "conv2d_concat node": _fuse}


def fuse_conv_concat(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
