"""A 1x1 convolution and the global average pooling reading it as one op (cnnc/ir op table),
made by cnnc/passes/fuse_pointwise_avgpool.py at inference, never written in a spec.

``pointwise_avgpool(x)`` is ``global_avgpool2d(conv(x))``: `conv` a 1x1 stride-1 conv2d or
conv2d_bn node's computation (its attributes in `conv`, its op in `conv_op`, its bias and
activation applied), pooled with `keepdims` as global_avgpool2d pools. The convolution may be
a gathered one (conv2d_gathered, conv2d_bn_gathered: ShuffleNetV2's head reading the last
shuffle's channels in place); the op's inputs are then that convolution's, up to MAX_SOURCES.
Parameters: the convolution's, in its op's order. The convolution's map (a mobile network's head, its widest
channels) is never written: each image's pixels are computed, activated and summed where they are
needed. The op stands for the pooling (`base`), its output: its pictures and receptive field are
one's.
"""

from __future__ import annotations

from cnnc.ir import args as A
from cnnc.ir import fused  # noqa: F401  (registers the ops the part runs)
from cnnc.ir.args import Arg, ArgError, Attrs, part_attrs
from cnnc.ir.depthwise_pointwise import POINTWISE_OPS, is_pointwise
from cnnc.ir.gathered import GATHERED_OF, MAX_SOURCES
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape

# The convolutions the op pools: a plain 1x1 one, or one reading a gather in place.
CONV_OPS = (*POINTWISE_OPS, *(GATHERED_OF[op] for op in POINTWISE_OPS))


def _check(attrs: Attrs) -> None:
    try:
        OPS[attrs["conv_op"]].check_attrs(dict(attrs["conv"]))
    except ArgError as err:
        raise ArgError(f"the convolution's attributes are invalid: {err}") from None
    if not is_pointwise(attrs["conv"]):
        raise ArgError("Expected a 1x1, stride-1, undilated, ungrouped convolution. "
                       f"Received conv={dict(attrs['conv'])}.")
    if attrs["conv"]["activation"] == "softmax":
        raise ArgError("Expected an element-wise activation on the convolution. Received "
                       "activation=softmax.")


def conv_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    """The convolution's output shape (the map the op does not write), given the inputs'."""
    return OPS[attrs["conv_op"]].infer(attrs["conv"], shapes)


def _pool_attrs(attrs: Attrs) -> Attrs:
    return Attrs(keepdims=attrs["keepdims"])


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return OPS["global_avgpool2d"].infer(_pool_attrs(attrs), (conv_shape(attrs, shapes),))


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    return OPS[attrs["conv_op"]].params(attrs["conv"], shapes)


def parts(node: Node, shapes: tuple[Shape, ...]) -> tuple[Node, Node]:
    """The two nodes a pointwise_avgpool node stands for, given its inputs' shapes: the
    convolution (named `<node>/conv`, reading the node's inputs, with the node's parameters)
    and the pooling (the node's name, reading the convolution)."""
    middle = conv_shape(node.attrs, shapes)
    conv = Node(name=f"{node.name}/conv", op=node.attrs["conv_op"], inputs=node.inputs,
                attrs=node.attrs["conv"], params=node.params, shape=middle, span=node.span,
                path=node.path)
    pool = Node(name=node.name, op="global_avgpool2d", inputs=(conv.name,),
                attrs=_pool_attrs(node.attrs), shape=node.shape, span=node.span, path=node.path)
    return conv, pool


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    middle = conv_shape(attrs, shapes)
    return (OPS[attrs["conv_op"]].flops(attrs["conv"], shapes, middle)
            + OPS["global_avgpool2d"].flops(_pool_attrs(attrs), (middle,), out))


def _reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    # each pooled term carries one convolution sum's rounding
    middle = conv_shape(attrs, shapes)
    return (OPS[attrs["conv_op"]].reduction(attrs["conv"], shapes)
            + OPS["global_avgpool2d"].reduction(_pool_attrs(attrs), (middle,)))


register(OpDef(
    name="pointwise_avgpool", group="fused", base="global_avgpool2d",
    args=(Arg("conv_op", A.choice(*CONV_OPS)), Arg("conv", part_attrs),
          Arg("keepdims", A.boolean, False)),
    arity=(1, MAX_SOURCES), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=_reduction,
    doc="A 1x1 convolution (with its batch norm folded, bias and activation) and the global "
        "average pooling reading it as one op (inference): the convolution's map is never "
        "written.",
))
