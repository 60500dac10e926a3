"""Channel shuffle in the op table (ShuffleNet's): the channels of the last axis seen as
(groups, C/groups), transposed to (C/groups, groups) and flattened back. Output channel
j * groups + g is input channel g * (C/groups) + j. Its gradient is the inverse permutation, a
shuffle with C/groups groups, so it needs no gradient op of its own."""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs
from cnnc.ir.ops import OpDef, register
from cnnc.ir.shapes import Shape, shape_str


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    if len(x) < 2:
        raise ShapeError(f"expects an input of rank 2 or more, got shape {shape_str(x)}")
    c, g = x[-1], attrs["groups"]
    if c % g:
        raise ShapeError(f"the input's {c} channels (shape {shape_str(x)}) are not a multiple "
                         f"of groups={g}")
    return x


register(OpDef(
    name="channel_shuffle", group="layer", kind="reshaping", keras_name="ChannelShuffle",
    aliases=("ChannelShuffle", "shuffle"),
    args=(Arg("groups", A.positive_int, positional=True),),
    arity=(1, 1), infer=_infer,
    doc="ShuffleNet's channel shuffle: channels as (groups, C/groups), transposed, flattened; "
        "output channel j * groups + g is input channel g * (C/groups) + j.",
))
