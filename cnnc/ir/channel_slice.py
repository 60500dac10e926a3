"""Channel slice in the op table (ShuffleNetV2's channel split, PyTorch's `x.chunk(2, dim=1)`):
channels start..stop-1 of the last axis, every other axis kept. Its gradient op puts dy back
into that channel range of a zero tensor; autodiff sums the slices of one input."""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.ops import OpDef, register
from cnnc.ir.shapes import Shape, shape_str


def _check(attrs: Attrs) -> None:
    if attrs["stop"] <= attrs["start"]:
        raise ArgError(f"Expected stop > start (a non-empty range of channels). Received "
                       f"start={attrs['start']}, stop={attrs['stop']}.")


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    if len(x) < 2:
        raise ShapeError(f"expects an input of rank 2 or more, got shape {shape_str(x)}")
    start, stop = attrs["start"], attrs["stop"]
    if stop > x[-1]:
        raise ShapeError(f"channels {start}:{stop} run past the input's {x[-1]} channels "
                         f"(shape {shape_str(x)})")
    return (*x[:-1], stop - start)


register(OpDef(
    name="channel_slice", group="layer", kind="reshaping", keras_name="ChannelSlice",
    aliases=("ChannelSlice",),
    args=(Arg("start", A.non_negative_int, positional=True, doc="first channel taken"),
          Arg("stop", A.positive_int, positional=True, doc="one past the last channel taken")),
    arity=(1, 1), infer=_infer, check=_check,
    doc="A contiguous range of channels: y[..., c] = x[..., start + c] for c < stop - start "
        "(ShuffleNetV2's channel split).",
))


def _grad_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (dy,) = shapes
    if dy[-1] != attrs["stop"] - attrs["start"] or attrs["stop"] > attrs["channels"]:
        raise ShapeError(f"dy of {dy[-1]} channels does not fit channels {attrs['start']}:"
                         f"{attrs['stop']} of {attrs['channels']}")
    return (*dy[:-1], attrs["channels"])


register(OpDef(
    name="channel_slice_grad", group="gradient",
    args=(Arg("start", A.non_negative_int), Arg("stop", A.positive_int),
          Arg("channels", A.positive_int, doc="the forward input's channels")),
    arity=(1, 1), infer=_grad_infer, check=_check,
    doc="dx of channel_slice: dy in channels start..stop-1, zeros elsewhere. Input (dy,).",
))
