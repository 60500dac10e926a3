"""A depthwise convolution and the layer normalisation over the channels reading it as one op
(cnnc/ir op table), made by cnnc/passes/fuse_depthwise_layer_norm.py at inference, never
written in a spec.

``depthwise_layer_norm(x)`` is ``layer_norm(depthwise(x))``: `depthwise` a depthwise_conv2d
node's computation (its attributes in `depthwise`, its bias and activation applied),
`layer_norm` a layer_norm node's over the last axis (`layer_norm`: epsilon, center, scale).
Parameters: the depthwise part's, then the layer norm's, each in its own op's order. The
depthwise map (a ConvNeXt block's) is never written: the kernel holds every channel of a pixel
and normalises them as it stores, so the op takes at most MAX_CHANNELS channels and a depth
multiplier of 1; wider layers keep their two nodes. The op's output is the layer norm's
(`base`).
"""

from __future__ import annotations

from cnnc.ir import layer_norm, layers  # noqa: F401  (registers the ops the parts run)
from cnnc.ir.args import Arg, ArgError, Attrs, part_attrs
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape

NAME = "depthwise_layer_norm"
# The channels a work-item holds while it normalises a pixel: ConvNeXt-sized stages (32, 64)
# in a CPU's registers and a few spills; wider maps would spill every accumulator.
MAX_CHANNELS = 64


def fusable(depthwise: Attrs, norm: Attrs, channels: int) -> bool:
    """Whether a depthwise_conv2d with `depthwise` attributes on `channels` input channels and
    the layer_norm (`norm`) reading it can be one node: one output channel per input channel,
    at most MAX_CHANNELS of them, an element-wise activation, a norm over the channels."""
    return (depthwise["depth_multiplier"] == 1 and channels <= MAX_CHANNELS
            and depthwise["activation"] != "softmax" and norm["axis"] == -1)


def _check(attrs: Attrs) -> None:
    try:
        OPS["depthwise_conv2d"].check_attrs(dict(attrs["depthwise"]))
        OPS["layer_norm"].check_attrs(dict(attrs["layer_norm"]))
    except ArgError as err:
        raise ArgError(f"a part's attributes are invalid: {err}") from None
    if attrs["depthwise"]["depth_multiplier"] != 1 or attrs["depthwise"]["activation"] == \
            "softmax":
        raise ArgError("Expected a depthwise part with depth_multiplier=1 and no softmax. "
                       f"Received depthwise={dict(attrs['depthwise'])}.")


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return OPS["depthwise_conv2d"].infer(attrs["depthwise"], shapes)


def part_params(attrs: Attrs, x: Shape) -> tuple[tuple[ParamSpec, ...], tuple[ParamSpec, ...]]:
    """The two parts' parameters, each in its own op's order."""
    middle = _infer(attrs, (x,))
    return (OPS["depthwise_conv2d"].params(attrs["depthwise"], (x,)),
            OPS["layer_norm"].params(attrs["layer_norm"], (middle,)))


def parts(node: Node, x: Shape) -> tuple[Node, Node]:
    """The two nodes a depthwise_layer_norm node stands for, given its input's shape: the
    depthwise part (`<node>/depthwise`, reading the node's input) and the layer norm (the
    node's name, reading the depthwise part), each with its own parameters."""
    attrs = node.attrs
    first = len(part_params(attrs, x)[0])
    dw = Node(name=f"{node.name}/depthwise", op="depthwise_conv2d", inputs=node.inputs,
              attrs=attrs["depthwise"], params=node.params[:first], shape=node.shape,
              span=node.span, path=node.path)
    ln = Node(name=node.name, op="layer_norm", inputs=(dw.name,), attrs=attrs["layer_norm"],
              params=node.params[first:], shape=node.shape, span=node.span, path=node.path)
    return dw, ln


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    first, second = part_params(attrs, shapes[0])
    return (*first, *second)


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    middle = _infer(attrs, shapes)
    return (OPS["depthwise_conv2d"].flops(attrs["depthwise"], shapes, middle)
            + OPS["layer_norm"].flops(attrs["layer_norm"], (middle,), out))


def _reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    # each normalised value carries one depthwise sum's rounding and the row's statistics'
    middle = _infer(attrs, shapes)
    return (OPS["depthwise_conv2d"].reduction(attrs["depthwise"], shapes)
            + OPS["layer_norm"].reduction(attrs["layer_norm"], (middle,)))


register(OpDef(
    name=NAME, group="fused", base="layer_norm",
    args=(Arg("depthwise", part_attrs), Arg("layer_norm", part_attrs)),
    arity=(1, 1), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=_reduction,
    doc="A depthwise convolution (bias, activation) and the layer normalisation over the "
        "channels reading it as one op (inference): the depthwise map is never written.",
))
