"""Depthwise-separable convolution (Keras SeparableConv2D), in the op table.

One layer, one row of `cnnc summary`, Keras' parameters (`<layer>/depthwise_kernel` (kh, kw, C,
M), `<layer>/pointwise_kernel` (1, 1, C*M, F), `<layer>/bias` (F,)), computed as its two parts:
a depthwise_conv2d without bias or activation, then a 1x1 conv2d with the bias and activation.
`separable_parts` gives both parts' attributes; every backend and rule runs those ops, so the
layer needs no arithmetic of its own (its gradient recomputes the depthwise part, which is
cheap, rather than keeping it).
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.layers import ACTIVATION_ARG, PADDING_ARG, window_output
from cnnc.ir.ops import OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape, numel, shape_str


def separable_parts(attrs: Attrs) -> tuple[Attrs, Attrs]:
    """(depthwise_conv2d attributes, conv2d 1x1 attributes) of the two parts."""
    depthwise = Attrs(kernel_size=attrs["kernel_size"], strides=attrs["strides"],
                      padding=attrs["padding"], depth_multiplier=attrs["depth_multiplier"],
                      dilation_rate=attrs["dilation_rate"], activation="linear", use_bias=False)
    pointwise = Attrs(filters=attrs["filters"], kernel_size=(1, 1), strides=(1, 1),
                      padding="valid", dilation_rate=(1, 1), groups=1,
                      activation=attrs["activation"], use_bias=attrs["use_bias"])
    return depthwise, pointwise


def _check(attrs: Attrs) -> None:
    if max(attrs["strides"]) > 1 and max(attrs["dilation_rate"]) > 1:
        raise ArgError(
            "strides > 1 is not supported together with dilation_rate > 1. Received "
            f"strides={attrs['strides']}, dilation_rate={attrs['dilation_rate']}."
        )


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    if len(x) != 4:
        raise ShapeError("expects a rank-4 input (batch, height, width, channels), got shape "
                         f"{shape_str(x)}")
    oh, ow = window_output(x, attrs["kernel_size"], attrs["strides"], attrs["padding"],
                           attrs["dilation_rate"])
    return (x[0], oh, ow, attrs["filters"])


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    # Keras computes each kernel's glorot fans from its own shape: receptive field times the
    # last two axes.
    kh, kw = attrs["kernel_size"]
    c, m, f = shapes[0][3], attrs["depth_multiplier"], attrs["filters"]
    out = [ParamSpec("depthwise_kernel", (kh, kw, c, m), "glorot_uniform",
                     fan=(kh * kw * c, kh * kw * m)),
           ParamSpec("pointwise_kernel", (1, 1, c * m, f), "glorot_uniform", fan=(c * m, f))]
    if attrs["use_bias"]:
        out.append(ParamSpec("bias", (f,), "zeros"))
    return tuple(out)


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    kh, kw = attrs["kernel_size"]
    pixels = numel(out[1:3])
    cm = shapes[0][3] * attrs["depth_multiplier"]
    n_out = numel(out)
    return (2 * pixels * cm * kh * kw + 2 * n_out * cm + (n_out if attrs["use_bias"] else 0)
            + n_out * ACTIVATIONS[attrs["activation"]].flops)


register(OpDef(
    name="separable_conv2d", group="layer", kind="convolution", keras_name="SeparableConv2D",
    aliases=("SeparableConv2D", "separable"),
    args=(Arg("filters", A.positive_int, positional=True),
          Arg("kernel_size", A.pair, positional=True),
          Arg("strides", A.pair, (1, 1)), PADDING_ARG,
          Arg("depth_multiplier", A.positive_int, 1),
          Arg("dilation_rate", A.pair, (1, 1)),
          ACTIVATION_ARG, Arg("use_bias", A.boolean, True)),
    arity=(1, 1), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=lambda attrs, shapes: (attrs["kernel_size"][0] * attrs["kernel_size"][1]
                                     + shapes[0][3] * attrs["depth_multiplier"]),
    fuses_activation=True,
    doc="Keras' SeparableConv2D: a depthwise convolution (depth_multiplier filters per input "
        "channel, no bias) then a 1x1 convolution to `filters` channels with bias and "
        "activation.",
))
