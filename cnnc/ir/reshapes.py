"""The reshape layer (cnnc/ir op table): Keras' Reshape, accepted where it only adds or removes
size-1 axes around the channel axis, so it moves no data and is a view on every backend."""

from __future__ import annotations

from math import prod
from typing import Any

from cnnc.errors import ShapeError
from cnnc.ir.args import Arg, ArgError, Attrs, _received
from cnnc.ir.ops import OpDef, register
from cnnc.ir.shapes import Shape, shape_str

ACCEPTED = ("reshape regroups only size-1 axes around the channels: (C,), (1, C) and (1, 1, C) "
            "into one another (the squeeze-and-excitation block's Reshape((1, 1, C))). Use "
            "flatten for (H, W, C) -> (H*W*C,), and channel_shuffle for the "
            "(H, W, G, C/G) shuffle pattern")


def _target_shape(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if (not isinstance(value, (tuple, list)) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and (v > 0 or v == -1)
                       for v in value)
            or list(value).count(-1) > 1):
        raise ArgError("Expected a shape of positive integers, with at most one -1 for an "
                       "axis inferred from the input's size, such as (1, 1, 64). "
                       + _received(name, value))
    return tuple(int(v) for v in value)


def _channel_only(shape: tuple[int, ...]) -> bool:
    return all(d == 1 for d in shape[:-1])


def _reshape_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    body = tuple(x[1:])
    target = attrs["target_shape"]
    size = prod(body)
    if -1 in target:
        known = prod(d for d in target if d != -1)
        if size % known:
            raise ShapeError(f"cannot reshape input {shape_str(x)} ({size} values per example) "
                             f"to target_shape {shape_str(target)}: {size} is not a multiple "
                             f"of {known}")
        target = tuple(size // known if d == -1 else d for d in target)
    if prod(target) != size:
        raise ShapeError(f"cannot reshape input {shape_str(x)} ({size} values per example) to "
                         f"target_shape {shape_str(target)} ({prod(target)} values)")
    if not (body and _channel_only(body) and _channel_only(target)):
        raise ShapeError(f"input {shape_str(x)} to target_shape {shape_str(target)} is not "
                         f"accepted: {ACCEPTED}")
    return (x[0], *target)


register(OpDef(
    name="reshape", group="layer", kind="reshaping", keras_name="Reshape", aliases=("Reshape",),
    args=(Arg("target_shape", _target_shape, positional=True,
              doc="shape without the batch dimension; one -1 is inferred"),),
    arity=(1, 1), infer=_reshape_infer,
    doc="Keras' Reshape where it adds or removes size-1 axes around the channels ((C,) <-> "
        "(1, C) <-> (1, 1, C)); free: the same bytes under another shape.",
))
