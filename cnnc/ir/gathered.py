"""Gathered convolutions (cnnc/ir op table): a 1x1 convolution that reads its input channels
straight from the tensors a chain of ShuffleNetV2 gathers (concat_shuffle) would have copied
them from, made by cnnc/passes/fuse_shuffle.py at inference, never written in a spec.

``conv2d_gathered`` and ``conv2d_bn_gathered`` compute their `base` layer (a 1x1, stride-1,
ungrouped conv2d or conv2d_bn) on the tensor x whose channels the `segments` argument gathers
from the inputs x_0, ..., x_{n-1} (all of one shape but the channels):

    x[..., k0 + i * kstep] = x_source[..., start + i]   for i in range(count)

for each segment (source, start, count, k0, kstep), which together fill every channel of x once.
Since y[p, f] = sum_k x[p, k] w[k, f], the convolution sums each segment's channels against
the kernel rows k0, k0 + kstep, ...: x is never written. A shuffle interleaves its groups, so
each input's part of a chain of shuffles and splits is such an arithmetic run (ShuffleNetV2's
unit reads its transformed half as two runs of stride 2, and after two units the first unit's
branches are runs of stride 8). Parameters, arguments and the activation: the layer's.
"""

from __future__ import annotations

from typing import Any

from cnnc.errors import ShapeError
from cnnc.ir import fused  # noqa: F401  (registers conv2d_bn)
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape, shape_str

# Inputs and arithmetic runs one gathered convolution reads at most (kernels/conv2d.cl takes
# this many pointers and -D SEG<i>_* runs).
MAX_SOURCES = 4
MAX_SEGMENTS = 8

Segment = tuple[int, int, int, int, int]  # source, start, count, k0, kstep


def _segments(name: str, value: Any) -> tuple[Segment, ...]:
    ok = isinstance(value, (tuple, list)) and 1 <= len(value) <= MAX_SEGMENTS and all(
        isinstance(s, (tuple, list)) and len(s) == 5
        and all(isinstance(v, int) and not isinstance(v, bool) for v in s)
        and s[0] >= 0 and s[1] >= 0 and s[2] > 0 and s[3] >= 0 and s[4] > 0
        for s in value)
    if not ok:
        raise ArgError(f"Expected 1 to {MAX_SEGMENTS} runs (source, start, count, k0, kstep) "
                       f"of non-negative integers, count and kstep positive. Received "
                       f"{name}={value!r}.")
    return tuple(tuple(int(v) for v in s) for s in value)  # type: ignore[misc]


def gathered_channels(segments: tuple[Segment, ...]) -> int:
    """How many channels the segments gather (checked to fill 0..C-1 once each)."""
    return sum(s[2] for s in segments)


def _check_segments(attrs: Attrs) -> None:
    segments = attrs["segments"]
    channels = gathered_channels(segments)
    seen = sorted(k0 + i * step for _, _, count, k0, step in segments for i in range(count))
    if seen != list(range(channels)):
        raise ArgError(f"Expected runs that fill channels 0..{channels - 1} once each. "
                       f"Received segments={segments!r}.")


def gathered_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    """The shape of the gathered input x the layer reads."""
    segments = attrs["segments"]
    if not 1 <= len(shapes) <= MAX_SOURCES:
        raise ShapeError(f"expects 1 to {MAX_SOURCES} inputs, got {len(shapes)}")
    lead = shapes[0][:-1]
    if any(len(s) != 4 or s[:-1] != lead for s in shapes):
        raise ShapeError("expects NHWC inputs of one size but the channels, got "
                         + ", ".join(shape_str(s) for s in shapes))
    for source, start, count, _, _ in segments:
        if source >= len(shapes) or start + count > shapes[source][-1]:
            raise ShapeError(f"a run reads channels {start}:{start + count} of input {source}, "
                             f"which has {len(shapes)} inputs of "
                             + ", ".join(str(s[-1]) for s in shapes) + " channels")
    if sorted({s[0] for s in segments}) != list(range(len(shapes))):
        raise ShapeError("expects every input to be read by a run")
    return (*lead, gathered_channels(segments))


def _gathered_op(layer: str) -> OpDef:
    base = OPS[layer]

    def check(attrs: Attrs) -> None:
        base.check(attrs)
        _check_segments(attrs)
        if (attrs["kernel_size"] != (1, 1) or attrs["strides"] != (1, 1)
                or attrs["groups"] != 1):
            raise ArgError("Expected a 1x1, stride-1, ungrouped convolution. Received "
                           f"kernel_size={attrs['kernel_size']}, strides={attrs['strides']}, "
                           f"groups={attrs['groups']}.")

    def infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
        return base.infer(attrs, (gathered_shape(attrs, shapes),))

    def params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
        return base.params(attrs, (gathered_shape(attrs, shapes),))

    def flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
        return base.flops(attrs, (gathered_shape(attrs, shapes),), out)

    def reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
        return base.reduction(attrs, (gathered_shape(attrs, shapes),))

    return OpDef(
        name=f"{layer}_gathered", group="fused",
        args=(*base.args, Arg("segments", _segments)), arity=(1, MAX_SOURCES),
        infer=infer, params=params, flops=flops, check=check, reduction=reduction,
        fuses_activation=True, base=layer,
        doc=f"{layer} (1x1) on channels gathered from its inputs by runs (source, start, count, "
            "k0, kstep): a chain of channel shuffles and splits read in place (inference).",
    )


GATHERED_OF: dict[str, str] = {}
"""The gathered op each 1x1 convolution (folded or not) becomes where it reads a gather."""

for _layer in ("conv2d", "conv2d_bn"):
    GATHERED_OF[_layer] = register(_gathered_op(_layer)).name

LAYER_OF_GATHERED = {op: layer for layer, op in GATHERED_OF.items()}
"""The layer op a gathered op runs on its gathered input."""
