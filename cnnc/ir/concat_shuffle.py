"""ShuffleNetV2's concatenate + channel_shuffle (+ channel_slice) as one op (cnnc/ir op table),
made by cnnc/passes/fuse_shuffle.py at inference, never written in a spec.

``concat_shuffle(x_0, ..., x_{G-1}; groups=G, start, stop)`` is
``channel_slice(channel_shuffle(concatenate(x_0, ..., x_{G-1}), G), start, stop)`` where the G
inputs each hold P = C / G channels, so that shuffle group g is input g: output channel
j * G + g of the full shuffle is x_g[..., j], and the op keeps channels start..stop-1 of it
(start and stop multiples of G). The concatenation and the shuffle are never written: one
gather reads each input once and writes the (sliced) interleave.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir import channel_shuffle  # noqa: F401  (registers the base op)
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.ops import OpDef, register
from cnnc.ir.shapes import Shape, shape_str

# Inputs the gather reads (kernels/channel_shuffle.cl takes this many pointers at most).
MAX_GROUPS = 4


def _check(attrs: Attrs) -> None:
    g, start, stop = attrs["groups"], attrs["start"], attrs["stop"]
    if not 2 <= g <= MAX_GROUPS:
        raise ArgError(f"Expected 2 <= groups <= {MAX_GROUPS}. Received groups={g}.")
    if stop <= start or start % g or stop % g:
        raise ArgError(f"Expected start < stop, both multiples of groups={g}. Received "
                       f"start={start}, stop={stop}.")


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    g = attrs["groups"]
    if len(shapes) != g:
        raise ShapeError(f"expects groups={g} inputs, got {len(shapes)}")
    first = shapes[0]
    if len(first) < 2 or any(s != first for s in shapes):
        raise ShapeError("expects inputs of one shape of rank 2 or more, got "
                         + ", ".join(shape_str(s) for s in shapes))
    channels = g * first[-1]
    if attrs["stop"] > channels:
        raise ShapeError(f"channels {attrs['start']}:{attrs['stop']} run past the shuffle's "
                         f"{channels} channels")
    return (*first[:-1], attrs["stop"] - attrs["start"])


register(OpDef(
    name="concat_shuffle", group="fused", base="channel_shuffle",
    args=(Arg("groups", A.positive_int), Arg("start", A.non_negative_int),
          Arg("stop", A.positive_int)),
    arity=(2, MAX_GROUPS), infer=_infer, check=_check,
    doc="channel_slice(channel_shuffle(concatenate(x_0..x_{G-1}), G), start, stop) with G "
        "inputs of equal channels (ShuffleNetV2's unit end), as one gather (inference).",
))
