"""A global average pooling and the dense layer reading it as one op (cnnc/ir op table), made by
cnnc/passes/fuse_avgpool_dense.py at inference, never written in a spec.

``avgpool_dense(x)`` is ``dense(global_avgpool2d(x))``: the pooling without keepdims, then the
dense layer whose checked attributes are `dense` (its bias and activation applied).
Parameters: the dense layer's. A classifier's head (resnet_mini, fashion-best, convnext_mini:
pooling, dense 10, softmax) then takes one launch instead of two, at batch 1 a launch's fixed
cost being more than the pooling's arithmetic. The op stands for the pooling (`base`), as
pointwise_avgpool does: it is not a layer the tuner times as it is (its input is a map, a dense
layer's a vector); the tuner times its dense part (cnnc/tune/space.py, tuning_graph).
"""

from __future__ import annotations

from cnnc.ir.args import Arg, ArgError, Attrs, part_attrs
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape

NAME = "avgpool_dense"
_POOL = Attrs(keepdims=False)


def _check(attrs: Attrs) -> None:
    try:
        OPS["dense"].check_attrs(dict(attrs["dense"]))
    except ArgError as err:
        raise ArgError(f"the dense layer's attributes are invalid: {err}") from None


def pooled_shape(x: Shape) -> Shape:
    """The pooling's output shape (the vector the op does not write)."""
    return OPS["global_avgpool2d"].infer(_POOL, (x,))


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return OPS["dense"].infer(attrs["dense"], (pooled_shape(shapes[0]),))


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    return OPS["dense"].params(attrs["dense"], (pooled_shape(shapes[0]),))


def parts(node: Node, x: Shape) -> tuple[Node, Node]:
    """The two nodes an avgpool_dense node stands for, given its input's shape: the pooling
    (named `<node>/pool`, reading the node's input) and the dense layer (the node's name,
    reading the pooling, with the node's parameters)."""
    middle = pooled_shape(x)
    pool = Node(name=f"{node.name}/pool", op="global_avgpool2d", inputs=node.inputs,
                attrs=_POOL, shape=middle, span=node.span, path=node.path)
    dense = Node(name=node.name, op="dense", inputs=(pool.name,), attrs=node.attrs["dense"],
                 params=node.params, shape=node.shape, span=node.span, path=node.path)
    return pool, dense


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    middle = pooled_shape(shapes[0])
    return (OPS["global_avgpool2d"].flops(_POOL, shapes, middle)
            + OPS["dense"].flops(attrs["dense"], (middle,), out))


def _reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    # each of the dense layer's terms carries one pooled mean's rounding
    middle = pooled_shape(shapes[0])
    return (OPS["dense"].reduction(attrs["dense"], (middle,))
            + OPS["global_avgpool2d"].reduction(_POOL, shapes))


register(OpDef(
    name=NAME, group="fused", base="global_avgpool2d",
    args=(Arg("dense", part_attrs),),
    arity=(1, 1), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=_reduction,
    doc="A global average pooling and the dense layer reading it as one op (inference): a "
        "classifier's head in one launch.",
))
