"""A 1x1 convolution and the 1x1 convolution reading it alone as one op (cnnc/ir op table), made
by cnnc/passes/fuse_pointwise_mlp.py at inference, never written in a spec.

``pointwise_mlp(x[, other])`` is ``project(expand(x)[, other])``: `expand` a 1x1 stride-1
conv2d or conv2d_bn node's computation (its attributes in `expand`, its op in `expand_op`, its
bias and element-wise activation applied), `project` a 1x1 stride-1 conv2d or conv2d_bn's or
their residual ops' (conv2d_add, conv2d_bn_add: `other` added before its activation) reading
it (`project`, `project_op`). Parameters: the expansion's, then the projection's, each in its
own op's order. The expansion's map (an inverted bottleneck's hidden layer, 4x the block's
channels in a ConvNeXt block) is never written: each pixel's hidden channels are computed
where the projection needs them. The op stands for the projection (`base` conv2d): a 1x1
convolution's pictures and receptive field.
"""

from __future__ import annotations

from typing import Any

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir import fused, residual  # noqa: F401  (registers the ops the parts run)
from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.depthwise_pointwise import POINTWISE_OPS, is_pointwise
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.residual import RESIDUAL_OF
from cnnc.ir.shapes import Shape

EXPAND_OPS = POINTWISE_OPS
PROJECT_OPS = (*POINTWISE_OPS, *(RESIDUAL_OF[op] for op in POINTWISE_OPS))


def _part(name: str, value: Any) -> Attrs:
    if not isinstance(value, Attrs):
        raise ArgError(f"Expected a part's checked attributes. Received {name}={value!r}.")
    return value


def has_residual(attrs: Attrs) -> bool:
    """Whether the projection adds a second input (a residual op)."""
    return attrs["project_op"] not in POINTWISE_OPS


def fusable_activations(expand: Attrs, project: Attrs) -> bool:
    """Whether the parts' activations are element-wise and at most one of them other than
    linear (the fused kernel builds one ACTIVATE, common.h's, applied after either part)."""
    acts = {expand["activation"], project["activation"]}
    if not all(ACTIVATIONS[a].elementwise for a in acts):
        return False
    return len(acts - {"linear"}) <= 1


def _check(attrs: Attrs) -> None:
    try:
        OPS[attrs["expand_op"]].check_attrs(dict(attrs["expand"]))
        OPS[attrs["project_op"]].check_attrs(dict(attrs["project"]))
    except ArgError as err:
        raise ArgError(f"a part's attributes are invalid: {err}") from None
    for part in ("expand", "project"):
        if not is_pointwise(attrs[part]):
            raise ArgError(f"Expected a 1x1, stride-1, undilated, ungrouped {part} part. "
                           f"Received {part}={dict(attrs[part])}.")
    if not fusable_activations(attrs["expand"], attrs["project"]):
        raise ArgError("Expected element-wise activations, at most one other than linear, in "
                       f"the two parts. Received {attrs['expand']['activation']} and "
                       f"{attrs['project']['activation']}.")


def hidden_shape(attrs: Attrs, x: Shape) -> Shape:
    """The expansion's output shape (the map the op does not write)."""
    return OPS[attrs["expand_op"]].infer(attrs["expand"], (x,))


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    wanted = 2 if has_residual(attrs) else 1
    if len(shapes) != wanted:
        raise ShapeError(f"a {attrs['project_op']} projection takes {wanted} input(s); "
                         f"received {len(shapes)}")
    hidden = hidden_shape(attrs, shapes[0])
    try:
        return OPS[attrs["project_op"]].infer(attrs["project"], (hidden, *shapes[1:]))
    except ShapeError as err:
        raise ShapeError(f"projection: {err.message}") from None


def part_params(attrs: Attrs, x: Shape) -> tuple[tuple[ParamSpec, ...], tuple[ParamSpec, ...]]:
    """The two parts' parameters, each in its own op's order."""
    hidden = hidden_shape(attrs, x)
    return (OPS[attrs["expand_op"]].params(attrs["expand"], (x,)),
            OPS[attrs["project_op"]].params(attrs["project"], (hidden,)))


def parts(node: Node, x: Shape) -> tuple[Node, Node]:
    """The two nodes a pointwise_mlp node stands for, given its input's shape: the expansion
    (named `<node>/expand`, reading the node's first input) and the projection (the node's name,
    reading the expansion and the node's residual input, if any), each with its own
    parameters and shape."""
    attrs = node.attrs
    first = len(part_params(attrs, x)[0])
    hidden = hidden_shape(attrs, x)
    expand = Node(name=f"{node.name}/expand", op=attrs["expand_op"], inputs=node.inputs[:1],
                  attrs=attrs["expand"], params=node.params[:first], shape=hidden,
                  span=node.span, path=node.path)
    project = Node(name=node.name, op=attrs["project_op"],
                   inputs=(expand.name, *node.inputs[1:]), attrs=attrs["project"],
                   params=node.params[first:], shape=node.shape, span=node.span, path=node.path)
    return expand, project


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    first, second = part_params(attrs, shapes[0])
    return (*first, *second)


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    hidden = hidden_shape(attrs, shapes[0])
    return (OPS[attrs["expand_op"]].flops(attrs["expand"], shapes[:1], hidden)
            + OPS[attrs["project_op"]].flops(attrs["project"], (hidden, *shapes[1:]), out))


def _reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    # as depthwise_pointwise's: each projection term carries one expansion sum's rounding
    hidden = hidden_shape(attrs, shapes[0])
    return (OPS[attrs["expand_op"]].reduction(attrs["expand"], shapes[:1])
            + OPS[attrs["project_op"]].reduction(attrs["project"], (hidden, *shapes[1:])))


register(OpDef(
    name="pointwise_mlp", group="fused", base="conv2d",
    args=(Arg("expand_op", A.choice(*EXPAND_OPS)), Arg("expand", _part),
          Arg("project_op", A.choice(*PROJECT_OPS)), Arg("project", _part)),
    arity=(1, 2), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=_reduction,
    doc="A 1x1 convolution (with its batch norm folded, bias and element-wise activation) and "
        "the 1x1 convolution reading it alone (likewise, with an optional residual add) as one "
        "op (inference): the hidden map is never written.",
))
