"""Binders of the resampling ops (cnnc/ir/resample.py): node -> launches of kernels/resample.cl,
and cropping as elementwise.cl's pad_rows with negative offsets (it reads inside only)."""

from __future__ import annotations

from cnnc.backends.opencl.launches import BindContext, Binder, Int, NodeBinding, Value, launch
from cnnc.backends.opencl.primitives import pad_rows
from cnnc.backends.opencl.tiling import flat, run_grid, run_vector
from cnnc.ir.graph import Node


def _defines(node: Node) -> dict[str, int]:
    sh, sw = node.attrs["size"]
    return {"SH": sh, "SW": sw, "BILINEAR": int(node.attrs["interpolation"] == "bilinear")}


def _resample(kernel: str, node: Node, ctx: BindContext, rows: int, run: int) -> NodeBinding:
    """resample.cl's `kernel` over `rows` rows of `run` pixels (tiling.run_grid)."""
    _, h, w, c = ctx.shape(node.inputs[0] if kernel == "upsampling2d" else node.name)
    vw = run_vector(c, target=ctx.target)
    rows_per, chunk, chunks, items = run_grid(rows, run, vw, ctx.target, unit=c)
    args = (Value(node.inputs[0]), Value(node.name), Int(rows), Int(rows_per), Int(chunk),
            Int(chunks), Int(h), Int(w), Int(c))
    return NodeBinding((launch("resample.cl", kernel, flat(items), args,
                               {**_defines(node), "VW": vw}),))


def bind_upsampling2d(node: Node, ctx: BindContext) -> NodeBinding:
    """One row of work per output row."""
    b, oh, ow, _ = ctx.shape(node.name)
    return _resample("upsampling2d", node, ctx, b * oh, ow)


def bind_upsampling2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    """A gather: one row of work per input row, each dx element written once."""
    b, h, w, _ = ctx.shape(node.name)
    return _resample("upsampling2d_grad", node, ctx, b * h, w)


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
