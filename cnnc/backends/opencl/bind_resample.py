"""Binders of the resampling ops (cnnc/ir/resample.py): node -> launches of kernels/resample.cl,
and cropping as elementwise.cl's pad_rows with negative offsets (it reads inside only)."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    BindContext,
    Binder,
    Int,
    NodeBinding,
    Value,
    elementwise_launch,
)
from cnnc.backends.opencl.primitives import pad_rows
from cnnc.ir.graph import Node


def _defines(node: Node) -> dict[str, int]:
    sh, sw = node.attrs["size"]
    return {"SH": sh, "SW": sw, "BILINEAR": int(node.attrs["interpolation"] == "bilinear")}


def bind_upsampling2d(node: Node, ctx: BindContext) -> NodeBinding:
    _, h, w, c = ctx.shape(node.inputs[0])
    n = ctx.numel(node.name)
    args = (Value(node.inputs[0]), Value(node.name), Int(n), Int(h), Int(w), Int(c))
    return NodeBinding((elementwise_launch("resample.cl", "upsampling2d", n, args, ctx.target,
                                           _defines(node)),))


def bind_upsampling2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    _, h, w, c = ctx.shape(node.name)
    n = ctx.numel(node.name)
    args = (Value(node.inputs[0]), Value(node.name), Int(n), Int(h), Int(w), Int(c))
    return NodeBinding((elementwise_launch("resample.cl", "upsampling2d_grad", n, args,
                                           ctx.target, _defines(node)),))


def bind_cropping2d(node: Node, ctx: BindContext) -> NodeBinding:
    _, h, w, c = ctx.shape(node.inputs[0])
    _, oh, ow, _ = ctx.shape(node.name)
    (t, _), (left, _) = node.attrs["cropping"]
    crop = pad_rows(node.inputs[0], node.name, ctx.batch * oh, oh=oh, h=h, pt=-t, in_run=w * c,
                    out_run=ow * c, lead=-left * c, target=ctx.target)
    return NodeBinding((crop,))


BINDERS: dict[str, Binder] = {
    "upsampling2d": bind_upsampling2d,
    "upsampling2d_grad": bind_upsampling2d_grad,
    "cropping2d": bind_cropping2d,
}
