"""Global max pooling in the op table: the layer (Keras GlobalMaxPooling2D) and its gradient."""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs
from cnnc.ir.ops import OpDef, register
from cnnc.ir.shapes import Shape, numel, shape_str


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    if len(x) != 4:
        raise ShapeError(f"expects a rank-4 input (batch, height, width, channels), got shape "
                         f"{shape_str(x)}")
    return (x[0], 1, 1, x[3]) if attrs["keepdims"] else (x[0], x[3])


register(OpDef(
    name="global_maxpool2d", group="layer", keras_name="GlobalMaxPooling2D",
    kind="global_pooling",
    aliases=("GlobalMaxPooling2D", "GlobalMaxPool2D", "gmp", "global_max_pooling2d"),
    args=(Arg("keepdims", A.boolean, False),),
    arity=(1, 1), infer=_infer,
    flops=lambda attrs, shapes, out: numel(shapes[0]),
    doc="Max over height and width, per channel.",
))

register(OpDef(
    name="global_maxpool2d_grad", group="gradient", args=(), arity=(2, 2),
    infer=lambda attrs, shapes: shapes[0],
    doc="Routes each dy[n, c] to the first maximum of x[n, :, :, c] in row-major (h, w) order, "
        "as maxpool2d_grad does; 0 elsewhere. Inputs (x, dy), dy (N, C) or (N, 1, 1, C).",
))
