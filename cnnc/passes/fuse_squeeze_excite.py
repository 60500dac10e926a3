"""Inference pass: a squeeze-and-excitation block's gate (global average pooling, then two 1x1
convolutions or dense layers on the pooled vector) as one squeeze_excite node
(cnnc/ir/squeeze_excite.py), so that the block takes one launch instead of three or four and
its pooled and hidden vectors are never written.

A conv2d (1x1, stride 1, ungrouped, undilated) or dense node whose activation is a sigmoid or
hard-sigmoid (the gate) reading a conv2d or dense node of that form (the hidden layer, any
element-wise activation) that reads a global_avgpool2d node (keepdims or not; or a reshape or
flatten of its pooled vector to (N, C) or (N, 1, 1, C)) becomes one node
under the gate's name (so its readers and the outputs keep their names), when the pooling, the view
and the hidden layer each have that one reader and neither is an output, and the pooled and hidden
vectors fit a work-group's local memory (MAX_VECTOR_FLOATS). Runs after fuse_activation (the
activations are then the layers' own) and after fold_gate, which folds the product of the map by
the gate into the convolution reading it: the map's other reader is then that convolution, and
this pass leaves it alone. Anything else (a batch norm on the hidden layer, a gate of another
activation, a pooled vector read twice) keeps its nodes.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node
from cnnc.ir.squeeze_excite import (
    GATE_ACTIVATIONS,
    LAYER_OPS,
    MAX_VECTOR_FLOATS,
    is_vector_layer,
)
from cnnc.passes.rewrite import Rewrite, apply_rules

# Views that may stand between the pooling and the hidden layer (Keras' Reshape((1, 1, C)) after
# a pooling without keepdims, an ONNX export's Flatten): the pooled vector regrouped as
# (N, C) or (N, 1, 1, C), which the fused op's keepdims says.
VIEWS = ("reshape", "flatten")


def _only_reader(graph: Graph, value: str, reader: str) -> Node | None:
    """The node producing `value` where `reader` alone reads it and it is no output."""
    if value not in graph.node_map or value in graph.outputs:
        return None
    if graph.consumers.get(value) != (reader,):
        return None
    return graph.node(value)


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if (node.op not in LAYER_OPS or not is_vector_layer(node.op, node.attrs)
            or node.attrs["activation"] not in GATE_ACTIVATIONS):
        return None
    hidden = _only_reader(graph, node.inputs[0], node.name)
    if (hidden is None or hidden.op not in LAYER_OPS
            or not is_vector_layer(hidden.op, hidden.attrs)
            or hidden.attrs["activation"] == "softmax"):
        return None
    pool = _only_reader(graph, hidden.inputs[0], hidden.name)
    views: tuple[str, ...] = ()
    pool_attrs = pool.attrs if pool is not None else None
    if pool is not None and pool.op in VIEWS:
        view = pool
        pool = _only_reader(graph, view.inputs[0], view.name)
        if pool is None or view.shape not in ((None, pool.shape[-1]),
                                              (None, 1, 1, pool.shape[-1])):
            return None
        views, pool_attrs = (view.name,), pool.attrs.replace(keepdims=len(view.shape) == 4)
    if pool is None or pool.op != "global_avgpool2d":
        return None
    if pool.shape[-1] + hidden.shape[-1] > MAX_VECTOR_FLOATS:
        return None
    attrs = Attrs(pool=pool_attrs, hidden_op=hidden.op, hidden=hidden.attrs, gate_op=node.op,
                  gate=node.attrs)
    fused = replace(node, op="squeeze_excite", inputs=pool.inputs, attrs=attrs,
                    params=hidden.params + node.params)
    return Rewrite(at=node.name, new=(fused,), drop=(pool.name, *views, hidden.name))


RULES = {"global pooling + two layers on the pooled vector -> one squeeze_excite node": _fuse}


def fuse_squeeze_excite(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
