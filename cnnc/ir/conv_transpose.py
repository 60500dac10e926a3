"""Transposed convolution (Keras Conv2DTranspose) and its gradient ops, in the op table.

conv2d_transpose is the input gradient of a convolution run forwards: the convolution from its
output (out_h, out_w, filters) back to its input (in_h, in_w, in_channels), with Keras'
Conv2DTranspose kernel (kh, kw, filters, in_channels), which is that convolution's own HWIO
kernel. `transpose_window` gives that convolution's geometry from Keras' arguments (output
size per Keras' deconv_output_length, the padding before per Keras' conv_transpose padding), so
every backend runs the three ops as the conv2d family with an explicit window:

    conv2d_transpose              = conv2d_grad_input of that convolution, then bias, activation
    conv2d_transpose_grad_input   = that convolution's forward (of dy)
    conv2d_transpose_grad_kernel  = its kernel gradient with x and dy swapped
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.gradients import INPUT_SHAPE
from cnnc.ir.layers import ACTIVATION_ARG, PADDING_ARG
from cnnc.ir.ops import OpDef, ParamSpec, register, row_terms
from cnnc.ir.shapes import Shape, numel, shape_str


def _output_padding(name: str, value: object) -> tuple[int, int] | None:
    if value is None:
        return None
    both = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (isinstance(both, (tuple, list)) and len(both) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in both)):
        return (int(both[0]), int(both[1]))
    raise ArgError("Expected none, a non-negative integer or a pair of them. "
                   f"Received {name}={value!r}.")


@dataclass(frozen=True)
class Window:
    """The convolution a transposed convolution inverts, along both axes: the transposed
    convolution's output size (that convolution's input) and the padding before it."""

    out_hw: tuple[int, int]
    pad_before: tuple[int, int]


def axis_window(n: int, k: int, stride: int, padding: str, output_padding: int | None,
                dilation: int = 1) -> tuple[int, int]:
    """(output length, padding before) along one axis, as Keras 3 computes them."""
    span = dilation * (k - 1) + 1
    if output_padding is None:
        if padding == "valid":
            return n * stride + max(span - stride, 0), 0
        return n * stride, max(span - stride, 0) // 2
    if padding == "valid":
        return (n - 1) * stride + span + output_padding, 0
    # deconv_output_length with pad = span // 2; the padding before is the one the
    # convolution's (jax) padding arguments leave: floor((span - span % 2 - op) / 2).
    return ((n - 1) * stride + span % 2 + output_padding,
            max(span - span % 2 - output_padding, 0) // 2)


def transpose_window(attrs: Attrs, in_hw: tuple[int, int]) -> Window:
    op = attrs["output_padding"] or (None, None)
    axes = [axis_window(in_hw[i], attrs["kernel_size"][i], attrs["strides"][i],
                        attrs["padding"], op[i], attrs["dilation_rate"][i]) for i in range(2)]
    return Window((axes[0][0], axes[1][0]), (axes[0][1], axes[1][1]))


def _check(attrs: Attrs) -> None:
    if max(attrs["strides"]) > 1 and max(attrs["dilation_rate"]) > 1:
        raise ArgError(
            "strides > 1 is not supported together with dilation_rate > 1. Received "
            f"strides={attrs['strides']}, dilation_rate={attrs['dilation_rate']}."
        )
    op = attrs["output_padding"]
    if op is not None and any(p >= s for p, s in zip(op, attrs["strides"])):
        raise ArgError("output_padding must be smaller than strides along each axis. Received "
                       f"output_padding={op}, strides={attrs['strides']}.")
    if not ACTIVATIONS[attrs["activation"]].elementwise:
        raise ArgError(f"conv2d_transpose takes element-wise activations only. Received "
                       f"activation={attrs['activation']}; put an activation layer after it.")


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    if len(x) != 4:
        raise ShapeError(f"expects a rank-4 input (batch, height, width, channels), got shape "
                         f"{shape_str(x)}")
    win = transpose_window(attrs, (x[1], x[2]))
    if min(win.out_hw) <= 0:
        raise ShapeError(f"a {x[1]}x{x[2]} input gives a {win.out_hw[0]}x{win.out_hw[1]} output "
                         f"with padding '{attrs['padding']}' and output_padding "
                         f"{attrs['output_padding']}")
    return (x[0], *win.out_hw, attrs["filters"])


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    # Keras' Conv2DTranspose kernel (kh, kw, filters, in_channels); Keras computes its glorot
    # fans from that shape: receptive field times the last two axes.
    kh, kw = attrs["kernel_size"]
    f, c = attrs["filters"], shapes[0][3]
    out = [ParamSpec("kernel", (kh, kw, f, c), "glorot_uniform", fan=(kh * kw * f, kh * kw * c))]
    if attrs["use_bias"]:
        out.append(ParamSpec("bias", (f,), "zeros"))
    return tuple(out)


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    kh, kw = attrs["kernel_size"]
    n_in = numel(shapes[0][1:3])  # every input pixel meets every tap once
    macs = n_in * kh * kw * shapes[0][3] * attrs["filters"]
    n_out = numel(out)
    return (2 * macs + (n_out if attrs["use_bias"] else 0)
            + n_out * ACTIVATIONS[attrs["activation"]].flops)


def _terms(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    kh, kw = attrs["kernel_size"]
    sh, sw = attrs["strides"]
    return max(1, -(-kh // sh) * -(-kw // sw) * shapes[0][3])


# The window of a transposed convolution: what its gradient ops need to know too.
TRANSPOSE_GEOMETRY_ARGS = (
    Arg("filters", A.positive_int, positional=True),
    Arg("kernel_size", A.pair, positional=True),
    Arg("strides", A.pair, (1, 1)),
    PADDING_ARG,
    Arg("output_padding", _output_padding, None,
        doc="extra rows and columns after, each smaller than its stride; none: Keras' default"),
    Arg("dilation_rate", A.pair, (1, 1)),
)

register(OpDef(
    name="conv2d_transpose", group="layer", kind="convolution", keras_name="Conv2DTranspose",
    aliases=("Conv2DTranspose", "deconv"),
    args=(*TRANSPOSE_GEOMETRY_ARGS, ACTIVATION_ARG, Arg("use_bias", A.boolean, True)),
    arity=(1, 1), infer=_infer, params=_params, flops=_flops, check=_check, reduction=_terms,
    fuses_activation=True,
    doc="Transposed convolution (Keras Conv2DTranspose): each input pixel spreads its kernel "
        "times its values over the output, strides apart; bias and activation after. Kernel "
        "(kh, kw, filters, in_channels); output size per Keras' deconv_output_length.",
))


def _grad_input_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return (shapes[0][0], *attrs["input_shape"])


def _grad_kernel_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    kh, kw = attrs["kernel_size"]
    return (kh, kw, attrs["filters"], attrs["input_shape"][-1])


register(OpDef(
    name="conv2d_transpose_grad_input", group="gradient",
    args=(*TRANSPOSE_GEOMETRY_ARGS, INPUT_SHAPE), arity=(2, 2), infer=_grad_input_infer,
    reduction=lambda attrs, shapes: attrs["kernel_size"][0] * attrs["kernel_size"][1]
    * attrs["filters"],
    doc="dx of conv2d_transpose: the convolution it inverts, run forwards on dy (cnnc.ir."
        "conv_transpose.transpose_window). Inputs (dy, kernel); dy before bias and activation.",
))

register(OpDef(
    name="conv2d_transpose_grad_kernel", group="gradient",
    args=(*TRANSPOSE_GEOMETRY_ARGS, INPUT_SHAPE), arity=(2, 2), infer=_grad_kernel_infer,
    reduction=row_terms(0),
    doc="d kernel of conv2d_transpose, summed over the batch, (kh, kw, filters, in_channels): "
        "the kernel gradient of the convolution it inverts, with dy as that convolution's "
        "input and x as its output gradient. Inputs (x, dy).",
))
