"""Layer ops: what a spec can contain, with Keras semantics for arguments and shapes.

Conventions fixed here: activations NHWC float32 with a leading batch dimension (None until
compile time); Conv2D kernel (kh, kw, in_channels/groups, filters), Dense kernel (in, units);
parameters named ``<layer>/kernel``, ``<layer>/bias``, ``<layer>/gamma``, ``<layer>/beta``,
``<layer>/moving_mean``, ``<layer>/moving_variance``.

FLOPs per example count a multiply-add as two and any other arithmetic operation as one.
"""

from __future__ import annotations

from math import prod
from typing import Any

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.activations import ACTIVATIONS, RELU_PARAMS
from cnnc.ir.activations import flops as activation_flops
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.broadcast import broadcast_shapes
from cnnc.ir.convpool import output_length, pool_attrs_geometry
from cnnc.ir.ops import (
    OpDef,
    ParamSpec,
    last_axis_terms,
    register,
    window_terms,
)
from cnnc.ir.regularizers import KERNEL_REGULARIZER
from cnnc.ir.shapes import Shape, numel, shape_str

ACTIVATION_ARG = Arg(
    "activation", A.activation_choice(none_as="linear"), "linear", words=A.ACTIVATION_WORDS
)
PADDING_ARG = Arg("padding", A.choice(*A.PADDINGS), "valid", words=A.PADDINGS)



def _activation_flops(attrs: Attrs, out: Shape) -> int:
    return _numel(out) * ACTIVATIONS[attrs["activation"]].flops


def _rank(shape: Shape, n: int, what: str) -> None:
    if len(shape) != n:
        raise ShapeError(
            f"expects a rank-{n} input {what}, got shape {shape_str(shape)}"
        )


_numel = numel


# ---------------------------------------------------------------- input


def _input_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return (None, *attrs["shape"])


def _input_shape(name: str, value: object) -> tuple[int, ...]:
    """A shape, or () for one scalar per example (Keras' Input(shape=())): the int32 class-id
    target the training graph feeds for sparse losses."""
    if isinstance(value, (tuple, list)) and len(value) == 0:
        return ()
    return A.shape(name, value)


register(OpDef(
    name="input", group="layer", keras_name="InputLayer", aliases=("Input", "InputLayer"),
    kind="input",
    args=(
        Arg("shape", _input_shape, positional=True, doc="shape without the batch dimension"),
        Arg("dtype", A.choice("float32", "int32"), "float32"),
    ),
    arity=(0, 0), infer=_input_infer,
    doc="A placeholder for data fed at run time.",
))


# ---------------------------------------------------------------- conv2d


def _conv_check(attrs: Attrs) -> None:
    if attrs["filters"] % attrs["groups"]:
        raise ArgError(
            f"filters must be a multiple of groups. Received filters={attrs['filters']}, "
            f"groups={attrs['groups']}."
        )
    if max(attrs["strides"]) > 1 and max(attrs["dilation_rate"]) > 1:
        raise ArgError(
            "strides > 1 is not supported together with dilation_rate > 1. Received "
            f"strides={attrs['strides']}, dilation_rate={attrs['dilation_rate']}."
        )


def window_output(
    in_shape: Shape, kernel: tuple[int, int], strides: tuple[int, int], padding: str,
    dilation: tuple[int, int] = (1, 1), what: str = "kernel",
) -> tuple[int, int]:
    """Output spatial size of a 2-D window; raises ShapeError when the window does not fit."""
    _, h, w, c = in_shape
    oh = output_length(h, kernel[0], strides[0], padding, dilation[0])
    ow = output_length(w, kernel[1], strides[1], padding, dilation[1])
    if oh <= 0 or ow <= 0:
        eff = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
        dil = f" (dilated to {eff[0]}x{eff[1]})" if eff != tuple(kernel) else ""
        raise ShapeError(
            f"{kernel[0]}x{kernel[1]} {what}{dil} does not fit a {h}x{w}x{c} input with "
            f"padding '{padding}'"
        )
    return oh, ow


def _conv_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    _rank(x, 4, "(batch, height, width, channels)")
    cin = x[3]
    if cin % attrs["groups"]:
        raise ShapeError(
            f"input channels ({cin}) must be a multiple of groups ({attrs['groups']})"
        )
    oh, ow = window_output(x, attrs["kernel_size"], attrs["strides"], attrs["padding"],
                           attrs["dilation_rate"])
    return (x[0], oh, ow, attrs["filters"])


def _conv_params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    (x,) = shapes
    kh, kw = attrs["kernel_size"]
    cin_g = x[3] // attrs["groups"]
    f = attrs["filters"]
    out = [ParamSpec("kernel", (kh, kw, cin_g, f), "glorot_uniform",
                     fan=(kh * kw * cin_g, kh * kw * f))]
    if attrs["use_bias"]:
        out.append(ParamSpec("bias", (f,), "zeros"))
    return tuple(out)


def _conv_flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    (x,) = shapes
    kh, kw = attrs["kernel_size"]
    n_out = _numel(out)
    macs = n_out * kh * kw * (x[3] // attrs["groups"])
    return 2 * macs + (n_out if attrs["use_bias"] else 0) + _activation_flops(attrs, out)


def _conv_terms(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    kh, kw = attrs["kernel_size"]
    return kh * kw * shapes[0][-1] // attrs["groups"]


# The window of a convolution: what its gradient ops need to know too (cnnc/ir/gradients.py).
CONV_GEOMETRY_ARGS = (
    Arg("filters", A.positive_int, positional=True),
    Arg("kernel_size", A.pair, positional=True),
    Arg("strides", A.pair, (1, 1)),
    PADDING_ARG,
    Arg("dilation_rate", A.pair, (1, 1)),
    Arg("groups", A.positive_int, 1),
)

register(OpDef(
    name="conv2d", group="layer", keras_name="Conv2D", aliases=("Conv2D", "conv"),
    kind="convolution",
    args=(*CONV_GEOMETRY_ARGS, ACTIVATION_ARG, Arg("use_bias", A.boolean, True),
          KERNEL_REGULARIZER),
    arity=(1, 1), infer=_conv_infer, params=_conv_params, flops=_conv_flops, check=_conv_check,
    reduction=_conv_terms, fuses_activation=True,
    doc="2-D convolution (cross-correlation) over NHWC input, with bias and activation.",
))


# ---------------------------------------------------------------- depthwise_conv2d


def depthwise_as_conv2d(attrs: Attrs, in_channels: int) -> Attrs:
    """The grouped conv2d a depthwise convolution is: one group per input channel, each with
    depth_multiplier filters. Its (KH, KW, C, M) kernel holds the same floats in the same order
    as that conv2d's (KH, KW, 1, C*M), so the backends run it, and its gradients, as that conv2d.
    """
    m = attrs["depth_multiplier"]
    return Attrs(filters=in_channels * m, kernel_size=attrs["kernel_size"],
                 strides=attrs["strides"], padding=attrs["padding"],
                 dilation_rate=attrs["dilation_rate"], groups=in_channels,
                 activation=attrs.get("activation", "linear"),
                 use_bias=attrs.get("use_bias", False))


def _depthwise_check(attrs: Attrs) -> None:
    if max(attrs["strides"]) > 1 and max(attrs["dilation_rate"]) > 1:
        raise ArgError(
            "strides > 1 is not supported together with dilation_rate > 1. Received "
            f"strides={attrs['strides']}, dilation_rate={attrs['dilation_rate']}."
        )


def _depthwise_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    _rank(x, 4, "(batch, height, width, channels)")
    oh, ow = window_output(x, attrs["kernel_size"], attrs["strides"], attrs["padding"],
                           attrs["dilation_rate"])
    return (x[0], oh, ow, x[3] * attrs["depth_multiplier"])


def _depthwise_params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    # Keras 3's DepthwiseConv2D: kernel (kh, kw, in_channels, depth_multiplier), whose fans
    # Keras computes from that shape (receptive field times its last two axes).
    c, m = shapes[0][3], attrs["depth_multiplier"]
    kh, kw = attrs["kernel_size"]
    out = [ParamSpec("kernel", (kh, kw, c, m), "glorot_uniform", fan=(kh * kw * c, kh * kw * m))]
    if attrs["use_bias"]:
        out.append(ParamSpec("bias", (c * m,), "zeros"))
    return tuple(out)


def _depthwise_flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    kh, kw = attrs["kernel_size"]
    n_out = _numel(out)
    return 2 * n_out * kh * kw + (n_out if attrs["use_bias"] else 0) + _activation_flops(attrs,
                                                                                        out)


# The window of a depthwise convolution: what its gradient ops need to know too.
DEPTHWISE_GEOMETRY_ARGS = (
    Arg("kernel_size", A.pair, positional=True),
    Arg("strides", A.pair, (1, 1)),
    PADDING_ARG,
    Arg("depth_multiplier", A.positive_int, 1),
    Arg("dilation_rate", A.pair, (1, 1)),
)

register(OpDef(
    name="depthwise_conv2d", group="layer", kind="convolution", keras_name="DepthwiseConv2D",
    aliases=("DepthwiseConv2D", "depthwise"),
    args=(*DEPTHWISE_GEOMETRY_ARGS, ACTIVATION_ARG, Arg("use_bias", A.boolean, True)),
    arity=(1, 1), infer=_depthwise_infer, params=_depthwise_params, flops=_depthwise_flops,
    check=_depthwise_check, reduction=lambda attrs, shapes: prod(attrs["kernel_size"]),
    fuses_activation=True,
    doc="Each input channel convolved with its own depth_multiplier filters (output channel "
        "c * depth_multiplier + m), then bias and activation: conv2d with groups = channels.",
))


# ---------------------------------------------------------------- pooling


def pool_strides(attrs: Attrs) -> tuple[int, int]:
    """The effective strides of a pooling layer (Keras: strides default to pool_size)."""
    return attrs["strides"] if attrs["strides"] is not None else attrs["pool_size"]


def pool_pads_arg(name: str, value: Any) -> tuple[int, int, int, int] | None:
    """Explicit pooling pads: None (the `padding` mode decides) or (top, bottom, left, right)."""
    if value is None:
        return None
    if (isinstance(value, (tuple, list)) and len(value) == 4
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        return (int(value[0]), int(value[1]), int(value[2]), int(value[3]))
    raise ArgError(
        "Expected 4 non-negative integers (top, bottom, left, right). "
        f"Received {name}={value!r}."
    )


def _pool_check(attrs: Attrs) -> None:
    """Argument combinations only the whole set can judge (ArgError names the argument)."""
    if attrs["pads"] is not None and attrs["padding"] != "valid":
        raise ArgError(f"pads replaces the padding mode: leave padding at 'valid'. Received "
                       f"padding={attrs['padding']!r} with pads={attrs['pads']!r}.")
    if attrs["ceil_mode"] and attrs["padding"] == "same":
        raise ArgError("ceil_mode applies to 'valid' or explicit pads; 'same' already keeps "
                       "the partial windows. Received ceil_mode=True with padding='same'.")
    if attrs["pads"] is not None:
        span = [d * (k - 1) + 1 for k, d in zip(attrs["pool_size"], attrs["dilation_rate"])]
        t, b, left, r = attrs["pads"]
        if max(t, b) >= span[0] or max(left, r) >= span[1]:
            raise ArgError(
                f"Expected pads smaller than the (dilated) {span[0]}x{span[1]} window, so that "
                f"every window holds an input cell. Received pads={attrs['pads']!r}."
            )


def _pool_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    _rank(x, 4, "(batch, height, width, channels)")
    if attrs["pads"] is None and not attrs["ceil_mode"]:
        oh, ow = window_output(x, attrs["pool_size"], pool_strides(attrs), attrs["padding"],
                               attrs["dilation_rate"], what="pool window")
        return (x[0], oh, ow, x[3])
    geo = pool_attrs_geometry((x[1], x[2]), attrs)
    if geo["OH"] <= 0 or geo["OW"] <= 0:
        kh, kw = attrs["pool_size"]
        raise ShapeError(
            f"{kh}x{kw} pool window does not fit a {x[1]}x{x[2]}x{x[3]} input with "
            f"pads {tuple(attrs['pads'] or (0, 0, 0, 0))}"
        )
    return (x[0], geo["OH"], geo["OW"], x[3])


def _pool_flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    ph, pw = attrs["pool_size"]
    return _numel(out) * ph * pw


# ONNX's pooling options beyond Keras' (import and export carry them; see docs/dsl.md).
MAXPOOL_ARGS = (
    Arg("pool_size", A.pair, (2, 2), positional=True),
    Arg("strides", A.optional_pair, None, doc="defaults to pool_size"),
    PADDING_ARG,
    Arg("pads", pool_pads_arg, None,
        doc="explicit (top, bottom, left, right) pads instead of the padding mode"),
    Arg("ceil_mode", A.boolean, False, doc="keep a last partial window (ONNX/PyTorch)"),
    Arg("dilation_rate", A.pair, (1, 1), doc="spacing of the window's cells"),
)
POOL_ARGS = (
    *MAXPOOL_ARGS,
    Arg("count_include_pad", A.boolean, False,
        doc="whether explicit pads count in the mean's divisor"),
)


register(OpDef(
    name="maxpool2d", group="layer", kind="pooling", keras_name="MaxPooling2D",
    aliases=("MaxPooling2D", "MaxPool2D", "maxpool", "max_pooling2d"),
    args=MAXPOOL_ARGS, arity=(1, 1), infer=_pool_infer, flops=_pool_flops, check=_pool_check,
    doc="Max over each window; 'same' padding never wins the max.",
))

register(OpDef(
    name="avgpool2d", group="layer", kind="pooling", keras_name="AveragePooling2D",
    aliases=("AveragePooling2D", "AvgPool2D", "avgpool", "average_pooling2d"),
    args=POOL_ARGS, arity=(1, 1), infer=_pool_infer, flops=_pool_flops, check=_pool_check,
    reduction=window_terms,
    doc="Mean over each window; with 'same' padding the mean is over the real (unpadded) cells.",
))


def side_pairs(name: str, value: object) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras ZeroPadding2D's padding and Cropping2D's cropping: n, (rows, cols) or
    ((top, bottom), (left, right))."""
    def amount(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if amount(value):
        return ((value, value), (value, value))  # type: ignore[return-value]
    if isinstance(value, (tuple, list)) and len(value) == 2:
        if all(amount(v) for v in value):
            return ((value[0], value[0]), (value[1], value[1]))  # type: ignore[return-value]
        if all(isinstance(v, (tuple, list)) and len(v) == 2 and all(amount(u) for u in v)
               for v in value):
            return ((value[0][0], value[0][1]), (value[1][0], value[1][1]))  # type: ignore
    raise ArgError("Expected a non-negative integer, a pair of them (rows, columns) or a pair "
                   f"of pairs ((top, bottom), (left, right)). Received {name}={value!r}.")


def _zero_padding_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    _rank(x, 4, "(batch, height, width, channels)")
    (t, b), (left, r) = attrs["padding"]
    return (x[0], x[1] + t + b, x[2] + left + r, x[3])


register(OpDef(
    name="zero_padding2d", group="layer", kind="reshaping", keras_name="ZeroPadding2D",
    aliases=("ZeroPadding2D", "zeropad"),
    args=(Arg("padding", side_pairs, ((1, 1), (1, 1)), positional=True),),
    arity=(1, 1), infer=_zero_padding_infer,
    doc="Rows and columns of zeros around the image: explicit padding, such as an imported "
        "model's asymmetric one, before a 'valid' convolution or pooling.",
))


def _gap_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    _rank(x, 4, "(batch, height, width, channels)")
    return (x[0], 1, 1, x[3]) if attrs["keepdims"] else (x[0], x[3])


register(OpDef(
    name="global_avgpool2d", group="layer", keras_name="GlobalAveragePooling2D",
    kind="global_pooling",
    aliases=("GlobalAveragePooling2D", "GlobalAvgPool2D", "gap", "global_average_pooling2d"),
    args=(Arg("keepdims", A.boolean, False),),
    arity=(1, 1), infer=_gap_infer,
    flops=lambda attrs, shapes, out: _numel(shapes[0]),
    reduction=lambda attrs, shapes: prod(shapes[0][1:3]),
    doc="Mean over height and width.",
))


# ---------------------------------------------------------------- dense, flatten


def _dense_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    if len(x) < 2:
        raise ShapeError(f"expects an input of rank 2 or more, got shape {shape_str(x)}")
    return (*x[:-1], attrs["units"])


def _dense_params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    (x,) = shapes
    n_in, u = x[-1], attrs["units"]
    out = [ParamSpec("kernel", (n_in, u), "glorot_uniform", fan=(n_in, u))]
    if attrs["use_bias"]:
        out.append(ParamSpec("bias", (u,), "zeros"))
    return tuple(out)


def _dense_flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    n_out = _numel(out)
    return (2 * n_out * shapes[0][-1] + (n_out if attrs["use_bias"] else 0)
            + _activation_flops(attrs, out))


register(OpDef(
    name="dense", group="layer", keras_name="Dense", aliases=("Dense", "fc", "linear"),
    kind="dense",
    args=(
        Arg("units", A.positive_int, positional=True),
        ACTIVATION_ARG,
        Arg("use_bias", A.boolean, True),
        KERNEL_REGULARIZER,
    ),
    arity=(1, 1), infer=_dense_infer, params=_dense_params, flops=_dense_flops,
    reduction=last_axis_terms, fuses_activation=True,
    doc="x @ kernel + bias on the last axis, then the activation.",
))


def _flatten_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    return (x[0], _numel(x[1:]))


register(OpDef(
    name="flatten", group="layer", kind="reshaping", keras_name="Flatten", aliases=("Flatten",),
    args=(), arity=(1, 1), infer=_flatten_infer,
    doc="Row-major (height, width, channels) to one axis; free on NHWC data.",
))


# ---------------------------------------------------------------- dropout, batch norm, activation


def _same_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return shapes[0]


register(OpDef(
    name="dropout", group="layer", keras_name="Dropout", aliases=("Dropout",),
    kind="regularization",
    args=(
        Arg("rate", A.unit_interval, positional=True),
        Arg("seed", A.optional_int, None, doc="mask seed; derived from the training seed if unset"),
    ),
    arity=(1, 1), infer=_same_shape,
    doc="Identity at inference; in training zeroes each element with probability `rate` and "
        "scales the rest by 1/(1-rate), with masks from cnnc.rng.",
))


def _bn_check(attrs: Attrs) -> None:
    if attrs["axis"] != -1:
        raise ArgError(
            f"only axis=-1 (channels, NHWC) is supported. Received axis={attrs['axis']}."
        )


def _bn_params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    c = shapes[0][-1]
    out = []
    if attrs["scale"]:
        out.append(ParamSpec("gamma", (c,), "ones"))
    if attrs["center"]:
        out.append(ParamSpec("beta", (c,), "zeros"))
    out.append(ParamSpec("moving_mean", (c,), "zeros", trainable=False))
    out.append(ParamSpec("moving_variance", (c,), "ones", trainable=False))
    return tuple(out)


# How batch normalisation normalises: what its training ops need to know too.
BN_NORMALISE_ARGS = (
    Arg("epsilon", A.positive_real, 1e-3),
    Arg("center", A.boolean, True),
    Arg("scale", A.boolean, True),
)

register(OpDef(
    name="batchnorm", group="layer", kind="normalization", keras_name="BatchNormalization",
    aliases=("BatchNormalization", "BatchNorm", "bn", "batch_normalization"),
    args=(Arg("axis", A.integer, -1), Arg("momentum", A.unit_interval, 0.99),
          *BN_NORMALISE_ARGS),
    arity=(1, 1), infer=_same_shape, params=_bn_params, check=_bn_check,
    flops=lambda attrs, shapes, out: 2 * _numel(out),
    doc="Inference: (x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta. "
        "Training uses the batch's mean and (biased) variance and updates the moving averages.",
))


# The activation op's parameters (cnnc/ir/activations.py: the relu's are Keras' ReLU layer's).
ACTIVATION_PARAMS = (
    Arg("max_value", A.optional_non_negative_real, RELU_PARAMS["max_value"],
        doc="relu: the cap; none for no cap"),
    Arg("negative_slope", A.non_negative_real, RELU_PARAMS["negative_slope"],
        doc="relu: the slope below the threshold"),
    Arg("threshold", A.finite_real, RELU_PARAMS["threshold"],
        doc="relu: where the slope changes"),
)


def _activation_check(attrs: Attrs) -> None:
    act = ACTIVATIONS[attrs["activation"]]
    for arg in ACTIVATION_PARAMS:
        if arg.name not in act.params and attrs[arg.name] != arg.default:
            takes = [a.name for a in ACTIVATIONS.values() if arg.name in a.params]
            raise ArgError(f"{arg.name} applies to the {' and '.join(takes)} activation only. "
                           f"Received activation={act.name}, {arg.name}={attrs[arg.name]}.")
    if attrs["max_value"] is not None and attrs["max_value"] < attrs["threshold"]:
        raise ArgError(
            "max_value must not be below threshold. Received "
            f"max_value={attrs['max_value']}, threshold={attrs['threshold']}."
        )


register(OpDef(
    name="activation", group="layer", keras_name="Activation", aliases=("Activation",),
    kind="activation",
    args=(Arg("activation", A.activation_choice(), positional=True, words=A.ACTIVATION_WORDS),
          *ACTIVATION_PARAMS),
    arity=(1, 1), infer=_same_shape, check=_activation_check,
    flops=lambda attrs, shapes, out: _numel(out) * activation_flops(attrs),
    reduction=last_axis_terms, fuses_activation=True,
    doc="Elementwise activation; softmax is over the last axis. The relu takes Keras' ReLU "
        "arguments: max_value where x >= max_value, x where threshold < x < max_value, "
        "negative_slope * (x - threshold) below the threshold.",
))


def _relu_params(attrs: Attrs) -> tuple[str, dict[str, Any]]:
    return "activation", {"activation": "relu", **{a.name: attrs[a.name]
                                                   for a in ACTIVATION_PARAMS if a.name in attrs}}


# Keras' ReLU layer, whose arguments make it leaky, capped (ReLU6) or shifted, and its special
# cases: each is the relu activation with those arguments.
register(OpDef(
    name="relu", group="layer", kind="activation", keras_name="ReLU", aliases=("ReLU",),
    args=ACTIVATION_PARAMS, arity=(1, 1), infer=_same_shape, expand=_relu_params,
    check=lambda attrs: _activation_check(_relu_params(attrs)[1]),
    doc="Keras' ReLU: the relu activation with these arguments.",
))

register(OpDef(
    name="leaky_relu", group="layer", keras_name="LeakyReLU", aliases=("LeakyReLU",),
    kind="activation",
    args=(Arg("negative_slope", A.non_negative_real, 0.2, positional=True),),
    arity=(1, 1), infer=_same_shape, expand=_relu_params,
    doc="Keras' LeakyReLU: x where x >= 0, negative_slope * x below: the relu activation with "
        "that negative_slope.",
))

register(OpDef(
    name="thresholded_relu", group="layer", kind="activation", keras_name="ThresholdedReLU",
    aliases=("ThresholdedReLU",),
    args=(Arg("theta", A.finite_real, 1.0, positional=True),),
    arity=(1, 1), infer=_same_shape,
    expand=lambda attrs: ("activation", {"activation": "relu", "threshold": attrs["theta"]}),
    doc="Keras 2's ThresholdedReLU: x where x > theta, 0 elsewhere: the relu activation with "
        "threshold=theta.",
))


# ---------------------------------------------------------------- merges


def _add_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return broadcast_shapes(shapes)


register(OpDef(
    name="add", group="layer", kind="merging", keras_name="Add", aliases=("Add",),
    args=(), arity=(2, None), infer=_add_infer,
    flops=lambda attrs, shapes, out: _numel(out) * (len(shapes) - 1),
    reduction=lambda attrs, shapes: len(shapes),
    doc="Elementwise sum of the inputs, broadcast like NumPy on the non-batch axes.",
))


def _concat_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    rank = len(shapes[0])
    axis = attrs["axis"]
    if not (-rank < axis < rank) or axis % rank == 0:
        raise ShapeError(f"axis {axis} is not a non-batch axis of rank-{rank} inputs")
    ax = axis % rank
    for s in shapes:
        if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != ax):
            listed = " and ".join(shape_str(t) for t in shapes)
            raise ShapeError(f"inputs {listed} differ outside the concatenation axis {axis}")
    return tuple(
        sum(s[ax] for s in shapes) if i == ax else d for i, d in enumerate(shapes[0])
    )


register(OpDef(
    name="concatenate", group="layer", kind="merging", keras_name="Concatenate",
    aliases=("Concatenate", "concat"),
    args=(Arg("axis", A.integer, -1),), arity=(2, None), infer=_concat_infer,
    doc="Join inputs along an axis (default: channels).",
))
