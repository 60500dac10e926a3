"""Receptive fields of every layer on the network's input: a pure function over the layer graph.

For one axis (height or width) a value's field is three numbers, in input pixels:

- size:  how many input pixels one output position depends on;
- jump:  how far apart, in input pixels, the fields of two neighbouring output positions are;
- start: the first input pixel of the first output position's field. Negative where the field
  reaches into zero padding (a 7x7 'same' convolution's first output starts at -3).

Rules, per op, for a window of k taps with stride s, dilation d, and p padding before
(cnnc.ir.convpool.pad_amounts, so Keras' uneven 'same' padding is exact):

    size_out  = size_in + d * (k - 1) * jump_in
    jump_out  = jump_in * s
    start_out = start_in - p * jump_in

Elementwise layers and dense layers on the channel axis keep the field; zero padding shifts its
start by the rows or columns added before. Flatten and global
pooling join every position: they act as one window over the whole map, so every unit after
them sees the union of the fields of all positions. Where paths meet (add, concatenate) the
field on each axis is the union of the incoming ones: the largest field over the paths (and
wider when the paths' fields are offset from each other). Values that are not images (a network
on vectors) have no field: None.

Rules are keyed by op name, as every per-op table in cnnc; tests check that every layer op has
one. Training-only ops have none: fields are a property of the layer graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from cnnc.errors import InternalError
from cnnc.ir.conv_maxpool import parts as conv_maxpool_parts
from cnnc.ir.conv_transpose import transpose_window
from cnnc.ir.convpool import pad_amounts, pool_attrs_geometry
from cnnc.ir.graph import Graph, Node
from cnnc.ir.layers import pool_strides
from cnnc.ir.ops import OPS, Shape


@dataclass(frozen=True)
class AxisField:
    """The field along one axis, in input pixels (see the module docstring)."""

    # Fractions after an upsampling (RESAMPLE_RULES): its outputs are under a pixel apart.
    size: int | Fraction
    jump: int | Fraction
    start: int | Fraction

    @property
    def end(self) -> int:
        """One past the last input pixel of the first output position's field."""
        return self.start + self.size

    def window(self, k: int, stride: int, dilation: int, pad_before: int) -> AxisField:
        return AxisField(size=self.size + dilation * (k - 1) * self.jump,
                         jump=self.jump * stride,
                         start=self.start - pad_before * self.jump)


@dataclass(frozen=True)
class Field:
    """A value's receptive field on one input: (height, width)."""

    input: str
    h: AxisField
    w: AxisField

    def window(self, in_hw: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
               padding: str, dilation: tuple[int, int] = (1, 1)) -> Field:
        ph = pad_amounts(in_hw[0], kernel[0], strides[0], padding, dilation[0])[0]
        pw = pad_amounts(in_hw[1], kernel[1], strides[1], padding, dilation[1])[0]
        return Field(self.input, self.h.window(kernel[0], strides[0], dilation[0], ph),
                     self.w.window(kernel[1], strides[1], dilation[1], pw))


Fields = tuple[Field, ...]
"""A value's fields: one per network input it depends on (most networks have one input)."""

Rule = Callable[[Node, tuple[Fields, ...], tuple[Shape, ...]], Fields]


def _hw(shape: Shape) -> tuple[int, int]:
    if len(shape) != 4:
        raise InternalError(f"expected an NHWC shape, got {shape}")
    return int(shape[1]), int(shape[2])


def _input(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]) -> Fields:
    # Only images have fields: (batch, height, width, channels).
    if node.shape is None or len(node.shape) != 4:
        return ()
    unit = AxisField(size=1, jump=1, start=0)
    return (Field(node.name, unit, unit),)


def _same(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]) -> Fields:
    return fields[0]


def _conv(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]) -> Fields:
    a = node.attrs
    return tuple(f.window(_hw(shapes[0]), a["kernel_size"], a["strides"], a["padding"],
                          a["dilation_rate"]) for f in fields[0])


def _pool(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]) -> Fields:
    a = node.attrs
    # Pads before each axis, whichever spelling (Keras mode or ONNX's explicit pads) gave them.
    geo = pool_attrs_geometry(_hw(shapes[0]), a)
    top, left = geo["PT"], geo["PL"]
    kh, kw = a["pool_size"]
    (sh, sw), (dh, dw) = pool_strides(a), a["dilation_rate"]
    return tuple(Field(f.input, f.h.window(kh, sh, dh, top), f.w.window(kw, sw, dw, left))
                 for f in fields[0])


def _zero_padding(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]) -> Fields:
    """ZeroPadding2D: output pixel i is input pixel i - top, so fields shift by the padding."""
    (top, _), (left, _) = node.attrs["padding"]
    return tuple(Field(f.input, f.h.window(1, 1, 1, top), f.w.window(1, 1, 1, left))
                 for f in fields[0])


def _whole_map(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]) -> Fields:
    """Flatten and global pooling: one window as large as the map, so every unit after them
    depends on every position. A flatten of a non-image (rank 2 or 3) keeps what it had."""
    if len(shapes[0]) != 4:
        return fields[0]
    hw = _hw(shapes[0])
    return tuple(f.window(hw, hw, hw, "valid") for f in fields[0])


def _union_axis(axes: list[AxisField]) -> AxisField:
    start = min(a.start for a in axes)
    end = max(a.end for a in axes)
    # Paths that meet have equal jumps in any network whose shapes agree after the same
    # strides; where they differ, the coarser one bounds how far apart the fields move.
    return AxisField(size=end - start, jump=max(a.jump for a in axes), start=start)


def union(fields: tuple[Fields, ...]) -> Fields:
    """Where paths meet: per network input, the union of the fields over the paths, per axis."""
    by_input: dict[str, list[Field]] = {}
    for path in fields:
        for f in path:
            by_input.setdefault(f.input, []).append(f)
    return tuple(Field(name, _union_axis([f.h for f in fs]), _union_axis([f.w for f in fs]))
                 for name, fs in by_input.items())


def _merge(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]) -> Fields:
    return union(fields)


# ---------------------------------------------------------------- resampling, transposed convs
# An upsampling by s puts s output positions per input position: their fields are 1/s of a jump
# apart (a Fraction, printed as such), and each reads the same input pixels as its source
# (nearest) or those and the next one (bilinear).


def _upsampling(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]) -> Fields:
    sh, sw = node.attrs["size"]
    extra = 1 if node.attrs["interpolation"] == "bilinear" else 0

    def axis(a: AxisField, s: int) -> AxisField:
        return AxisField(size=a.size + extra * a.jump, jump=Fraction(a.jump) / s, start=a.start)

    return tuple(Field(f.input, axis(f.h, sh), axis(f.w, sw)) for f in fields[0])


def _cropping(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]) -> Fields:
    """Cropping2D: output pixel i is input pixel i + top, so fields shift by the cropping."""
    (top, _), (left, _) = node.attrs["cropping"]
    return tuple(Field(f.input, f.h.window(1, 1, 1, -top), f.w.window(1, 1, 1, -left))
                 for f in fields[0])


def _conv_transpose(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]
                    ) -> Fields:
    """Output o of a transposed convolution reads inputs i with i * s = o + p - t * d for its
    taps t: up to ceil(span / s) of them, the first output from i = ceil((p - span + 1) / s)."""
    a = node.attrs
    pads = transpose_window(a, _hw(shapes[0])).pad_before

    def axis(f: AxisField, i: int) -> AxisField:
        k, s, d = a["kernel_size"][i], a["strides"][i], a["dilation_rate"][i]
        span = d * (k - 1) + 1
        return AxisField(size=f.size + (-(-span // s) - 1) * f.jump, jump=Fraction(f.jump) / s,
                         start=f.start - ((span - 1 - pads[i]) // s) * f.jump)

    return tuple(Field(f.input, axis(f.h, 0), axis(f.w, 1)) for f in fields[0])


RESAMPLE_RULES: dict[str, Rule] = {
    "separable_conv2d": _conv,  # its 1x1 part keeps the depthwise part's field
    "conv2d_transpose": _conv_transpose,
    "upsampling2d": _upsampling,
    "cropping2d": _cropping,
}


# Kinds of layer (ops.LAYER_KINDS) whose windows differ from op to op: each of their ops has its
# own rule in RULES. Every other kind's rule follows from the kind (KIND_RULES), so a new layer
# of such a kind needs nothing here.
PER_OP_KINDS = frozenset({"convolution", "pooling", "reshaping"})

KIND_RULES: dict[str, Rule] = {
    "input": _input,
    "global_pooling": _whole_map,
    "dense": _same,  # on the last axis: a 1x1 window on images, nothing spatial on vectors
    "regularization": _same,
    "normalization": _same,
    "activation": _same,
    "merging": _merge,
}

# One rule per layer op of the PER_OP_KINDS (tests/ir/test_receptive_field.py checks that every
# layer op has a rule, its own or its kind's).
RULES: dict[str, Rule] = {
    "conv2d": _conv,
    "depthwise_conv2d": _conv,
    "maxpool2d": _pool,
    "avgpool2d": _pool,
    "zero_padding2d": _zero_padding,
    "flatten": _whole_map,
    "reshape": _same,  # size-1 axes around the channels only (cnnc/ir/reshapes.py)
    **RESAMPLE_RULES,
}


def _conv_maxpool(node: Node, fields: tuple[Fields, ...], shapes: tuple[Shape, ...]) -> Fields:
    """A convolution and its pooling fused at inference (conv_maxpool.py): the two windows in
    turn, a residual's field joining the convolution's."""
    conv, pool = conv_maxpool_parts(node, shapes)
    field = _conv(conv, fields[:1], shapes[:1])
    return _pool(pool, (union((field, *fields[1:])),), (conv.shape,))


# Fused ops of the inference graph that leave a layer's output (the pooling's) under its name:
# their windows in turn, so the inference graph keeps the spec's fields.
FUSED_RULES: dict[str, Rule] = {"conv2d_maxpool": _conv_maxpool, "conv2d_avgpool": _conv_maxpool}
# Two dense layers (dense_pair), each on the last axis: the head's output keeps its field as each
# dense layer does.
FUSED_RULES["dense_pair"] = _same
# ShuffleNet's channel shuffle moves channels only: each position keeps its field.
RULES["channel_shuffle"] = _same
# A channel slice keeps every position: each keeps its field.
RULES["channel_slice"] = _same


def rule_of(op: str) -> Rule | None:
    """The receptive-field rule of a layer op: its own, else its kind's; a fused op's of
    FUSED_RULES; None for other ops."""
    if op in RULES:
        return RULES[op]
    if op in FUSED_RULES:
        return FUSED_RULES[op]
    kind = OPS[op].kind if op in OPS else None
    return KIND_RULES.get(kind) if kind is not None else None


def receptive_fields(graph: Graph) -> dict[str, Fields]:
    """Every node's receptive fields on the graph's image inputs, by node name.

    The graph must be a layer graph (a spec as loaded, or the inference graph): training-only
    ops have no rule.
    """
    out: dict[str, Fields] = {}
    for node in graph.nodes:
        rule = rule_of(node.op)
        if rule is None:
            group = OPS[node.op].group if node.op in OPS else "unknown"
            raise InternalError(f"no receptive-field rule for op '{node.op}' ({group} op) at "
                                f"node '{node.name}'")
        fields = tuple(out.get(v, ()) for v in node.inputs)
        shapes = tuple(graph.shape_of(v) for v in node.inputs)
        out[node.name] = rule(node, fields, shapes)
    return out


def format_axes(values: tuple[int, int]) -> str:
    """'7' when both axes agree, else '7x5' (height x width)."""
    return str(values[0]) if values[0] == values[1] else f"{values[0]}x{values[1]}"


def describe(fields: Fields, *, spatial: bool = True) -> tuple[str, str, str]:
    """(size, jump, start) as the summary prints them: '7x7', '1', '-3'; '-' without a field.

    Size is always height x width; jump and start print one number when both axes agree.
    spatial=False (a value with no height and width, after flatten) prints no jump: there are
    no neighbouring positions. With several image inputs each part names its input.
    """
    if not fields:
        return ("-", "-", "-")
    parts: list[tuple[str, str, str]] = []
    for f in fields:
        prefix = f"{f.input}: " if len(fields) > 1 else ""
        parts.append((f"{prefix}{f.h.size}x{f.w.size}",
                      prefix + format_axes((f.h.jump, f.w.jump)) if spatial else "-",
                      prefix + format_axes((f.h.start, f.w.start))))
    return tuple("; ".join(p[i] for p in parts) for i in range(3))  # type: ignore[return-value]
