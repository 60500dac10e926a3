"""Binder of the channel shuffle (cnnc/ir/channel_shuffle.py): node -> a gather of
kernels/channel_shuffle.cl, and its table `BINDERS`. Its gradient is a channel_shuffle node too
(the inverse shuffle), bound by the same function."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    BindContext,
    Binder,
    Int,
    NodeBinding,
    Value,
    elementwise_launch,
)
from cnnc.ir.graph import Node


def bind_channel_shuffle(node: Node, ctx: BindContext) -> NodeBinding:
    n = ctx.numel(node.name)
    cols = ctx.shape(node.name)[-1]
    args = (Value(node.inputs[0]), Value(node.name), Int(n), Int(cols),
            Int(node.attrs["groups"]))
    return NodeBinding((elementwise_launch("channel_shuffle.cl", "channel_shuffle", n, args,
                                           ctx.target),))


BINDERS: dict[str, Binder] = {"channel_shuffle": bind_channel_shuffle}
