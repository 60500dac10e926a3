"""Preprocessing layers in the op table: Keras' Rescaling and Normalization, which let a model
carry its own input scaling (an exported model then takes raw pixels), and the gradient op of
normalization.

rescaling: y = x * scale + offset, with two scalars (Keras' Rescaling with float arguments).
normalization: y = (x - mean) / max(sqrt(variance), 1e-7) per channel (the last axis), as Keras'
Normalization computes it (its epsilon is Keras' backend.epsilon()). Its mean and variance are
non-trainable parameters: given in the spec (their initial values), or adapted from the training
split by `cnnc run` before training (`Model.adapt` from Python), and saved with the weights.
"""

from __future__ import annotations

from typing import Any

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.graph import Graph
from cnnc.ir.ops import OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape, numel, shape_str

# Keras' backend.epsilon(): the smallest standard deviation normalization divides by.
NORMALIZATION_EPSILON = 1e-7

# The initializer of a parameter whose values a spec gives: "constant:" then the values.
CONSTANT_INIT = "constant:"


def _same_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    x = shapes[0]
    if len(x) < 2:
        raise ShapeError(f"expects an input of rank 2 or more, got shape {shape_str(x)}")
    return x


def _elementwise_flops(per_element: int):
    def flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
        return per_element * numel(shapes[0])
    return flops


register(OpDef(
    name="rescaling", group="layer", kind="normalization", keras_name="Rescaling",
    aliases=("Rescaling", "rescale"),
    args=(Arg("scale", A.finite_real, positional=True),
          Arg("offset", A.finite_real, 0.0, positional=True)),
    arity=(1, 1), infer=_same_shape, flops=_elementwise_flops(2),
    doc="y = x * scale + offset (Keras' Rescaling): `rescaling 0.00392156862745098` makes "
        "pixels in [0, 255] into [0, 1].",
))


def channel_values(name: str, value: Any) -> tuple[float, ...] | None:
    """A number, or a list of numbers (one per channel); None when absent."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ArgError(f"Expected a number or a list of numbers. Received {name}=[].")
    return tuple(A.finite_real(name, v) for v in items)


def optional_boolean(name: str, value: Any) -> bool | None:
    return None if value is None else A.boolean(name, value)


def _norm_check(attrs: Attrs) -> None:
    if attrs["axis"] != -1:
        raise ArgError("only axis=-1 (the channels of NHWC maps) is supported. "
                       f"Received axis={attrs['axis']}.")
    mean, var = attrs["mean"], attrs["variance"]
    if (mean is None) != (var is None):
        raise ArgError("give both mean and variance, or neither (adapted from the training "
                       f"data). Received mean={mean}, variance={var}.")
    if mean is not None and attrs["adapt"]:
        raise ArgError("adapt=true computes mean and variance from the training data; drop "
                       "it or the given values. Received adapt=true with mean and variance.")
    if var is not None and any(v < 0 for v in var):
        raise ArgError(f"Expected variances >= 0. Received variance={var}.")


def _per_channel(attrs: Attrs, key: str, c: int) -> tuple[float, ...] | None:
    values = attrs[key]
    if values is None:
        return None
    if len(values) == 1:
        return values * c
    if len(values) != c:
        raise ShapeError(f"{key} has {len(values)} values, but the input has {c} channels; "
                         "give one value or one per channel")
    return values


def _norm_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    x = _same_shape(attrs, shapes)
    _per_channel(attrs, "mean", x[-1])
    _per_channel(attrs, "variance", x[-1])
    return x


def constant_init(values: tuple[float, ...]) -> str:
    """The init string of a parameter with given values (read by cnnc/initializers.py)."""
    return CONSTANT_INIT + ",".join(repr(float(v)) for v in values)


def _norm_params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    c = shapes[0][-1]
    mean, var = _per_channel(attrs, "mean", c), _per_channel(attrs, "variance", c)
    return (
        ParamSpec("mean", (c,), constant_init(mean) if mean else "zeros", trainable=False),
        ParamSpec("variance", (c,), constant_init(var) if var else "ones", trainable=False),
    )


def adapts(attrs: Attrs) -> bool:
    """Whether `cnnc run` computes this normalization's statistics from the training split:
    asked for, or implied by giving no values (Keras requires adapt() then)."""
    return attrs["adapt"] is not False and attrs["mean"] is None


register(OpDef(
    name="normalization", group="layer", kind="normalization", keras_name="Normalization",
    aliases=("Normalization", "normalize"),
    args=(Arg("mean", channel_values, None, doc="a number or one per channel"),
          Arg("variance", channel_values, None, doc="a number or one per channel"),
          Arg("adapt", optional_boolean, None,
              doc="compute mean and variance from the training split (the default when they "
                  "are not given)"),
          Arg("axis", A.integer, -1)),
    arity=(1, 1), infer=_norm_infer, params=_norm_params, check=_norm_check,
    flops=_elementwise_flops(2),
    doc="y = (x - mean) / max(sqrt(variance), 1e-7) per channel (Keras' Normalization); mean "
        "and variance are non-trainable, given or adapted from the training split.",
))


def _like_dy(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return shapes[0]


register(OpDef(
    name="normalization_grad", group="gradient", args=(), arity=(2, 2), infer=_like_dy,
    doc="dx of normalization: dy / max(sqrt(variance), 1e-7) per channel. Inputs "
        "(dy, variance).",
))


def rescaled_inputs(graph: Graph) -> frozenset[str]:
    """The float inputs that only rescaling layers read: the model scales them itself (a
    `rescaling 0.00392156862745098` first layer takes 0-255 pixels), so they may be given as
    uint8 or other integer images, converted to floats unchanged (cnnc/inputs.py)."""
    readers = graph.consumers
    by_name = graph.node_map
    return frozenset(
        n.name for n in graph.nodes
        if n.op == "input" and n.attrs["dtype"] != "int32" and readers.get(n.name)
        and all(by_name[r].op == "rescaling" for r in readers[n.name]))
