"""Local response normalisation in the op table: the `lrn` layer (AlexNet's, GoogLeNet's) and
the gradient op its training graph uses.

Over the channel axis (the last: NHWC), each value is divided by a power of the sum of squares
in a window of `size` channels centred on it, clipped at the edges (no wrap, no renormalising):

    y[c] = x[c] / (bias + alpha / size * sum_{|i - c| <= (size - 1) / 2} x[i]^2) ** beta

ONNX's LRN and PyTorch's nn.LocalResponseNorm(size, alpha, beta, k=bias) compute exactly this;
so does Caffe's ACROSS_CHANNELS (local_size=size, k=bias). TensorFlow's
tf.nn.local_response_normalization(depth_radius=r, bias, alpha=a, beta) sums 2r + 1 channels
and does not divide alpha by the window: size = 2r + 1, alpha = a * (2r + 1). Keras has no such
layer. `size` must be odd: an even window has no centre, and ONNX and PyTorch place its extra
channel on opposite sides.
"""

from __future__ import annotations

from typing import Any

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.ops import OpDef, register
from cnnc.ir.shapes import Shape, numel, shape_str


def odd_size(name: str, value: Any) -> int:
    size = A.positive_int(name, value)
    if size % 2 == 0:
        raise ArgError(f"Expected an odd number of channels (a window centred on each channel). "
                       f"Received {name}={value!r}.")
    return size


# How LRN normalises: what its gradient op needs to know too. Defaults: ONNX's and PyTorch's.
LRN_ARGS = (
    Arg("size", odd_size, positional=True,
        doc="channels in the window, odd, centred on each channel"),
    Arg("alpha", A.non_negative_real, 1e-4, doc="the scale of the window's mean square"),
    Arg("beta", A.finite_real, 0.75, doc="the exponent"),
    Arg("bias", A.positive_real, 1.0, doc="added before the power (Caffe's and PyTorch's k)"),
)

# FLOPs per value: its square (1), the window's other size - 1 squares added (size - 1), bias +
# alpha/size * sum (a multiply-add, 2), the power (4, as tanh counts in activations.py) and the
# product with x (1).
POWER_FLOPS = 4


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    if len(x) < 2:
        raise ShapeError(f"expects an input of rank 2 or more (channels last), got shape "
                         f"{shape_str(x)}")
    return x


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    return numel(shapes[0]) * (attrs["size"] + 3 + POWER_FLOPS)


def window_terms(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    """The squares summed into one value's divisor."""
    return attrs["size"]


register(OpDef(
    # Keras has no LRN layer: no keras_name, so `cnnc summary` and auto names say "lrn".
    name="lrn", group="layer", kind="normalization",
    aliases=("local_response_normalization", "LocalResponseNormalization", "LRN"),
    args=LRN_ARGS, arity=(1, 1), infer=_infer, flops=_flops, reduction=window_terms,
    doc="Local response normalisation across channels (ONNX LRN, Caffe ACROSS_CHANNELS): "
        "x / (bias + alpha/size * sum of x^2 over the size channels centred on it) ** beta.",
))


def _like_x(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return shapes[0]


register(OpDef(
    name="lrn_grad", group="gradient", args=LRN_ARGS, arity=(2, 2), infer=_like_x,
    reduction=lambda attrs, shapes: 2 * attrs["size"],
    doc="dx of lrn, from (x, dy), the divisors recomputed from x: with d[c] = bias + "
        "alpha/size * window sum of x^2, dx[j] = dy[j] * d[j]^-beta - 2 alpha beta / size * "
        "x[j] * sum over the window around j of dy[c] x[c] d[c]^(-beta-1).",
))
