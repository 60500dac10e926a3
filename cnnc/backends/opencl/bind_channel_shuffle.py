"""Binder of the channel shuffle (cnnc/ir/channel_shuffle.py): node -> a gather of
kernels/channel_shuffle.cl, and its table `BINDERS`. Its gradient is a channel_shuffle node too
(the inverse shuffle), bound by the same function."""

from __future__ import annotations

from cnnc.backends.opencl.launches import BindContext, Binder, Int, NodeBinding, Value, launch
from cnnc.backends.opencl.tiling import flat
from cnnc.ir.graph import Node


def bind_channel_shuffle(node: Node, ctx: BindContext) -> NodeBinding:
    """One work-item per row of the last axis."""
    rows, cols = ctx.rows_cols(node.name)
    args = (Value(node.inputs[0]), Value(node.name), Int(rows), Int(cols),
            Int(node.attrs["groups"]))
    return NodeBinding((launch("channel_shuffle.cl", "channel_shuffle", flat(rows), args),))


BINDERS: dict[str, Binder] = {"channel_shuffle": bind_channel_shuffle}
