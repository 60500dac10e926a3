"""A depthwise convolution and the 1x1 convolution reading it as one op (cnnc/ir op table), made
by cnnc/passes/fuse_depthwise_pointwise.py at inference, never written in a spec.

``depthwise_pointwise(x)`` is ``pointwise(depthwise(x))``: `depthwise` a depthwise_conv2d or
depthwise_conv2d_bn node's computation (its attributes in `depthwise`, its op in `depthwise_op`,
its bias and activation applied), `pointwise` a 1x1 stride-1 conv2d or conv2d_bn's (`pointwise`,
`pointwise_op`). Parameters: the depthwise part's, then the pointwise part's, each in its own
op's order. The depthwise result (a MobileNet block's widest map) is never written: each output
pixel's depthwise channels are computed where the 1x1 convolution needs them. The op stands for
a separable convolution (`base`): its pictures and receptive field are one's.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir import fused, separable  # noqa: F401  (registers the ops the parts run)
from cnnc.ir.args import Arg, ArgError, Attrs, part_attrs
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape

DEPTHWISE_OPS = ("depthwise_conv2d", "depthwise_conv2d_bn")
POINTWISE_OPS = ("conv2d", "conv2d_bn")


def is_pointwise(attrs: Attrs) -> bool:
    """Whether a conv2d's attributes make it a plain 1x1 matrix product over the channels."""
    return (attrs["kernel_size"] == (1, 1) and attrs["strides"] == (1, 1)
            and attrs["dilation_rate"] == (1, 1) and attrs["groups"] == 1)


def one_activation(depthwise: Attrs, pointwise: Attrs) -> bool:
    """Whether the two parts apply at most one activation other than linear between them (the
    fused kernel builds one ACTIVATE, applied after either part or both)."""
    acts = {depthwise["activation"], pointwise["activation"]} - {"linear"}
    return len(acts) <= 1 and "softmax" not in acts


def _check(attrs: Attrs) -> None:
    try:
        OPS[attrs["depthwise_op"]].check_attrs(dict(attrs["depthwise"]))
        OPS[attrs["pointwise_op"]].check_attrs(dict(attrs["pointwise"]))
    except ArgError as err:
        raise ArgError(f"a part's attributes are invalid: {err}") from None
    if not is_pointwise(attrs["pointwise"]):
        raise ArgError("Expected a 1x1, stride-1, undilated, ungrouped pointwise part. "
                       f"Received pointwise={dict(attrs['pointwise'])}.")
    if not one_activation(attrs["depthwise"], attrs["pointwise"]):
        raise ArgError("Expected at most one activation (other than linear and softmax) in the "
                       f"two parts. Received {attrs['depthwise']['activation']} and "
                       f"{attrs['pointwise']['activation']}.")


def middle_shape(attrs: Attrs, x: Shape) -> Shape:
    """The depthwise part's output shape (the map the op does not write)."""
    return OPS[attrs["depthwise_op"]].infer(attrs["depthwise"], (x,))


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    middle = middle_shape(attrs, x)
    try:
        return OPS[attrs["pointwise_op"]].infer(attrs["pointwise"], (middle,))
    except ShapeError as err:
        raise ShapeError(f"pointwise part: {err.message}") from None


def part_params(attrs: Attrs, x: Shape) -> tuple[tuple[ParamSpec, ...], tuple[ParamSpec, ...]]:
    """The two parts' parameters, each in its own op's order."""
    middle = middle_shape(attrs, x)
    return (OPS[attrs["depthwise_op"]].params(attrs["depthwise"], (x,)),
            OPS[attrs["pointwise_op"]].params(attrs["pointwise"], (middle,)))


def parts(node: Node, x: Shape) -> tuple[Node, Node]:
    """The two nodes a depthwise_pointwise node stands for, given its input's shape: the
    depthwise part (named `<node>/depthwise`, reading the node's input) and the pointwise part
    (the node's name, reading the depthwise part), each with its own parameters and shape."""
    attrs = node.attrs
    first = len(part_params(attrs, x)[0])
    middle = middle_shape(attrs, x)
    dw = Node(name=f"{node.name}/depthwise", op=attrs["depthwise_op"], inputs=node.inputs,
              attrs=attrs["depthwise"], params=node.params[:first], shape=middle,
              span=node.span, path=node.path)
    pw = Node(name=node.name, op=attrs["pointwise_op"], inputs=(dw.name,),
              attrs=attrs["pointwise"], params=node.params[first:], shape=node.shape,
              span=node.span, path=node.path)
    return dw, pw


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    first, second = part_params(attrs, shapes[0])
    return (*first, *second)


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    middle = middle_shape(attrs, shapes[0])
    return (OPS[attrs["depthwise_op"]].flops(attrs["depthwise"], shapes, middle)
            + OPS[attrs["pointwise_op"]].flops(attrs["pointwise"], (middle,), out))


def _reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    # as separable_conv2d's: each pointwise term carries one depthwise sum's rounding
    middle = middle_shape(attrs, shapes[0])
    return (OPS[attrs["depthwise_op"]].reduction(attrs["depthwise"], shapes)
            + OPS[attrs["pointwise_op"]].reduction(attrs["pointwise"], (middle,)))


register(OpDef(
    name="depthwise_pointwise", group="fused", base="separable_conv2d",
    args=(Arg("depthwise_op", A.choice(*DEPTHWISE_OPS)), Arg("depthwise", part_attrs),
          Arg("pointwise_op", A.choice(*POINTWISE_OPS)), Arg("pointwise", part_attrs)),
    arity=(1, 1), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=_reduction,
    doc="A depthwise convolution (with its batch norm folded, bias and activation) and the "
        "1x1 convolution reading it (likewise) as one op (inference): the depthwise map is "
        "never written.",
))
