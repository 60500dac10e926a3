"""Layer normalisation in the op table: the layer (Keras LayerNormalization over the channel
axis) and the gradient ops its training graph uses.

Each row of C values (the last axis; every other axis, batch included, indexes rows) is
normalised by its own mean and biased variance, then scaled and shifted per channel:
y = (x - mean) / sqrt(var + epsilon) * gamma + beta. Unlike batch norm it has no moving
averages and behaves the same in training and at inference, so no pass replaces or folds it.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.ops import OpDef, ParamSpec, last_axis_terms, register, row_terms
from cnnc.ir.shapes import Shape, numel, shape_str

# How layer normalisation normalises: what its gradient ops need to know too.
LN_NORMALISE_ARGS = (
    Arg("epsilon", A.positive_real, 1e-3),
    Arg("center", A.boolean, True),
    Arg("scale", A.boolean, True),
)


def _check(attrs: Attrs) -> None:
    if attrs["axis"] != -1:
        raise ArgError("only axis=-1 (the channels of NHWC maps, ConvNeXt's use) is supported. "
                       f"Received axis={attrs['axis']}.")


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    if len(x) < 2:
        raise ShapeError(f"expects an input of rank 2 or more, got shape {shape_str(x)}")
    return x


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    c = shapes[0][-1]
    out = []
    if attrs["scale"]:
        out.append(ParamSpec("gamma", (c,), "ones"))
    if attrs["center"]:
        out.append(ParamSpec("beta", (c,), "zeros"))
    return tuple(out)


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    # mean, squared deviations and their sum, normalise (subtract, multiply), scale, shift
    n = numel(shapes[0])
    return n * (5 + int(attrs["scale"]) + int(attrs["center"]))


register(OpDef(
    name="layer_norm", group="layer", kind="normalization", keras_name="LayerNormalization",
    aliases=("LayerNormalization", "LayerNorm", "ln", "layer_normalization"),
    args=(Arg("axis", A.integer, -1), *LN_NORMALISE_ARGS),
    arity=(1, 1), infer=_infer, params=_params, check=_check, flops=_flops,
    reduction=last_axis_terms,
    doc="Each row of the last axis normalised by its own mean and biased variance: "
        "(x - mean) / sqrt(var + epsilon) * gamma + beta, the same in training and inference.",
))


def _like_x(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return shapes[0]


def _channels(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return (shapes[0][-1],)


register(OpDef(
    name="layer_norm_grad_input", group="gradient", args=LN_NORMALISE_ARGS, arity=(2, 3),
    infer=_like_x, reduction=last_axis_terms,
    doc="dx of layer_norm, per row of the last axis: with xhat the normalised row and "
        "g = dy*gamma, dx = (g - mean(g) - xhat*mean(g*xhat)) / sqrt(var + epsilon). Inputs "
        "(x, dy[, gamma]): gamma present iff scale.",
))

register(OpDef(
    name="layer_norm_grad_gamma", group="gradient", args=(Arg("epsilon", A.positive_real),),
    arity=(2, 2), infer=_channels, reduction=row_terms(0),
    doc="sum(dy * xhat) over every axis but the last, xhat normalised per row. Inputs (x, dy).",
))


def _sums(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return (2, shapes[0][-1])


register(OpDef(
    name="layer_norm_grad_sums", group="gradient", args=(Arg("epsilon", A.positive_real),),
    arity=(2, 2), infer=_sums, reduction=row_terms(0),
    doc="Row 0: sum(dy) (beta's gradient), row 1: sum(dy * xhat) (gamma's), over every axis but "
        "the last, xhat normalised per row; one pass over x and dy for both "
        "(cnnc/passes/share_ln_sums.py). Inputs (x, dy).",
))
