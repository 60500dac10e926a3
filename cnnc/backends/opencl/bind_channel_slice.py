"""Binders of the channel slice and its gradient (cnnc/ir/channel_slice.py): the slice as
elementwise.cl's copy_block on the last axis (as concatenate's gradient `slice`), its gradient
as elementwise.cl's pad_rows (each dy row placed in a row of zeros); and their table
`BINDERS`."""

from __future__ import annotations

from cnnc.backends.opencl.launches import BindContext, Binder, NodeBinding
from cnnc.backends.opencl.primitives import copy_block, pad_rows
from cnnc.ir.graph import Node


def bind_channel_slice(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    shape = ctx.shape(x)
    start, stop = node.attrs["start"], node.attrs["stop"]
    axis = len(shape) - 1
    return NodeBinding((copy_block(x, node.name, shape, axis, stop - start,
                                   src_axis=shape[axis], src_start=start,
                                   dst_axis=stop - start, target=ctx.target),))


def bind_channel_slice_grad(node: Node, ctx: BindContext) -> NodeBinding:
    rows, cols = ctx.rows_cols(node.name)
    a = node.attrs
    # One row an image (oh = h = rows), so dx row r reads dy row r.
    pad = pad_rows(node.inputs[0], node.name, rows, oh=rows, h=rows, pt=0,
                   in_run=a["stop"] - a["start"], out_run=cols, lead=a["start"],
                   target=ctx.target)
    return NodeBinding((pad,))


BINDERS: dict[str, Binder] = {
    "channel_slice": bind_channel_slice,
    "channel_slice_grad": bind_channel_slice_grad,
}
