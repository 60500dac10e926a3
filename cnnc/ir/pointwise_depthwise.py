"""A 1x1 convolution and the depthwise convolution reading it as one op (cnnc/ir op table), made
by cnnc/passes/fuse_pointwise_depthwise.py at inference, never written in a spec.

``pointwise_depthwise(x)`` is ``depthwise(pointwise(x))``: `pointwise` a 1x1 stride-1 conv2d or
conv2d_bn node's computation (its attributes in `pointwise`, its op in `pointwise_op`, its bias
and activation applied), `depthwise` a depthwise_conv2d or depthwise_conv2d_bn node's
(`depthwise`, `depthwise_op`) with a depth multiplier of 1. Parameters: the pointwise part's,
then the depthwise part's, each in its own op's order. The pointwise result (an MBConv or
inverted residual block's expansion, its widest map) is never written: each work-item computes
the expanded values its depthwise windows read. The op's output is the depthwise part's, which a
squeeze-excite block's pooling and gate go on reading. It stands for a separable convolution
(`base`), whose parts it runs in the other order: its pictures and receptive field are one's
(a 1x1 convolution widens no window), and the tuner does not take it for a depthwise layer.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir import fused, layers  # noqa: F401  (registers the ops the parts run)
from cnnc.ir.args import Arg, ArgError, Attrs, part_attrs
from cnnc.ir.depthwise_pointwise import DEPTHWISE_OPS, POINTWISE_OPS, is_pointwise, one_activation
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape

NAME = "pointwise_depthwise"


def fusable(pointwise: Attrs, depthwise: Attrs) -> bool:
    """Whether a conv2d with `pointwise` attributes and the depthwise_conv2d (`depthwise`)
    reading it can be one node: a plain 1x1 convolution, one output channel per depthwise input
    channel, at most one activation (other than linear and softmax) between the two."""
    return (is_pointwise(pointwise) and depthwise["depth_multiplier"] == 1
            and one_activation(depthwise, pointwise))


def _check(attrs: Attrs) -> None:
    try:
        OPS[attrs["pointwise_op"]].check_attrs(dict(attrs["pointwise"]))
        OPS[attrs["depthwise_op"]].check_attrs(dict(attrs["depthwise"]))
    except ArgError as err:
        raise ArgError(f"a part's attributes are invalid: {err}") from None
    if not fusable(attrs["pointwise"], attrs["depthwise"]):
        raise ArgError("Expected a 1x1, stride-1, undilated, ungrouped pointwise part, a "
                       "depthwise part with depth_multiplier=1, and at most one activation "
                       "(other than linear and softmax) in the two. Received "
                       f"pointwise={dict(attrs['pointwise'])}, "
                       f"depthwise={dict(attrs['depthwise'])}.")


def middle_shape(attrs: Attrs, x: Shape) -> Shape:
    """The pointwise part's output shape (the map the op does not write)."""
    return OPS[attrs["pointwise_op"]].infer(attrs["pointwise"], (x,))


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    middle = middle_shape(attrs, x)
    try:
        return OPS[attrs["depthwise_op"]].infer(attrs["depthwise"], (middle,))
    except ShapeError as err:
        raise ShapeError(f"depthwise part: {err.message}") from None


def part_params(attrs: Attrs, x: Shape) -> tuple[tuple[ParamSpec, ...], tuple[ParamSpec, ...]]:
    """The two parts' parameters, each in its own op's order."""
    middle = middle_shape(attrs, x)
    return (OPS[attrs["pointwise_op"]].params(attrs["pointwise"], (x,)),
            OPS[attrs["depthwise_op"]].params(attrs["depthwise"], (middle,)))


def parts(node: Node, x: Shape) -> tuple[Node, Node]:
    """The two nodes a pointwise_depthwise node stands for, given its input's shape: the
    pointwise part (named `<node>/pointwise`, reading the node's input) and the depthwise part
    (the node's name, reading the pointwise part), each with its own parameters and shape."""
    attrs = node.attrs
    first = len(part_params(attrs, x)[0])
    middle = middle_shape(attrs, x)
    pw = Node(name=f"{node.name}/pointwise", op=attrs["pointwise_op"], inputs=node.inputs,
              attrs=attrs["pointwise"], params=node.params[:first], shape=middle,
              span=node.span, path=node.path)
    dw = Node(name=node.name, op=attrs["depthwise_op"], inputs=(pw.name,),
              attrs=attrs["depthwise"], params=node.params[first:], shape=node.shape,
              span=node.span, path=node.path)
    return pw, dw


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    first, second = part_params(attrs, shapes[0])
    return (*first, *second)


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    middle = middle_shape(attrs, shapes[0])
    return (OPS[attrs["pointwise_op"]].flops(attrs["pointwise"], shapes, middle)
            + OPS[attrs["depthwise_op"]].flops(attrs["depthwise"], (middle,), out))


def _reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    # each depthwise term carries one pointwise sum's rounding
    middle = middle_shape(attrs, shapes[0])
    return (OPS[attrs["pointwise_op"]].reduction(attrs["pointwise"], shapes)
            + OPS[attrs["depthwise_op"]].reduction(attrs["depthwise"], (middle,)))


register(OpDef(
    name=NAME, group="fused", base="separable_conv2d",
    args=(Arg("pointwise_op", A.choice(*POINTWISE_OPS)), Arg("pointwise", part_attrs),
          Arg("depthwise_op", A.choice(*DEPTHWISE_OPS)), Arg("depthwise", part_attrs)),
    arity=(1, 1), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=_reduction,
    doc="A 1x1 convolution (with its batch norm folded, bias and activation) and the depthwise "
        "convolution reading it (likewise) as one op (inference): the expanded map is never "
        "written.",
))
