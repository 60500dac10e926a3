"""Binders of the channel slice and its gradient (cnnc/ir/channel_slice.py): the slice as
elementwise.cl's copy_block on the last axis (as concatenate's gradient `slice`), its gradient
as a scatter into zeros of kernels/channel_slice.cl; and their table `BINDERS`."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    BindContext,
    Binder,
    Int,
    NodeBinding,
    Value,
    elementwise_launch,
)
from cnnc.backends.opencl.primitives import copy_block
from cnnc.ir.graph import Node


def bind_channel_slice(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    shape = ctx.shape(x)
    start, stop = node.attrs["start"], node.attrs["stop"]
    axis = len(shape) - 1
    return NodeBinding((copy_block(x, node.name, shape, axis, stop - start,
                                   src_axis=shape[axis], src_start=start,
                                   dst_axis=stop - start),))


def bind_channel_slice_grad(node: Node, ctx: BindContext) -> NodeBinding:
    n = ctx.numel(node.name)
    a = node.attrs
    args = (Value(node.inputs[0]), Value(node.name), Int(n), Int(a["channels"]),
            Int(a["start"]), Int(a["stop"] - a["start"]))
    return NodeBinding((elementwise_launch("channel_slice.cl", "channel_slice_grad", n, args,
                                           ctx.target),))


BINDERS: dict[str, Binder] = {
    "channel_slice": bind_channel_slice,
    "channel_slice_grad": bind_channel_slice_grad,
}
