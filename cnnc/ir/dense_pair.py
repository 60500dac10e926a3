"""A small dense layer and the softmax head reading it as one op (cnnc/ir op table), made by
cnnc/passes/fuse_dense_pair.py at inference, never written in a spec.

``dense_pair(x)`` is ``head(hidden(x))``: two dense layers, each with its checked attributes
(`hidden`: any element-wise activation; `head`: a softmax), the second reading the first alone.
Parameters: the hidden layer's, then the head's, each in the dense op's order. At a few rows
one work-group per row keeps the hidden vector and the logits in local memory
(kernels/dense_pair.cl), so a classifier's last two layers take one launch instead of two: at
batch 1 a launch's fixed cost in a steady stream of passes is more than such a layer's
arithmetic. `hidden_name` is the hidden layer's name in the graph it came from: the tuner times
the two parts under their own names (cnnc/tune/space.py, tuning_graph), and the binder unfuses
the pair with their variants where the fused launch does not apply (more rows, a larger layer).
The op stands for the head (`base`).
"""

from __future__ import annotations

from cnnc.ir import args as A
from cnnc.ir import layers  # noqa: F401  (registers the ops the parts run)
from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.args import Arg, ArgError, Attrs, part_attrs
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape

NAME = "dense_pair"


def _check(attrs: Attrs) -> None:
    try:
        OPS["dense"].check_attrs(dict(attrs["hidden"]))
        OPS["dense"].check_attrs(dict(attrs["head"]))
    except ArgError as err:
        raise ArgError(f"a part's attributes are invalid: {err}") from None
    if not ACTIVATIONS[attrs["hidden"]["activation"]].elementwise:
        raise ArgError(f"Expected an element-wise activation on the hidden layer. Received "
                       f"{attrs['hidden']['activation']}.")
    if attrs["head"]["activation"] != "softmax":
        raise ArgError(f"Expected a softmax on the head. Received "
                       f"{attrs['head']['activation']}.")


def hidden_shape(attrs: Attrs, x: Shape) -> Shape:
    """The hidden layer's output shape (the vector the op does not write)."""
    return OPS["dense"].infer(attrs["hidden"], (x,))


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return OPS["dense"].infer(attrs["head"], (hidden_shape(attrs, shapes[0]),))


def part_params(attrs: Attrs, x: Shape) -> tuple[tuple[ParamSpec, ...], tuple[ParamSpec, ...]]:
    """The hidden layer's and the head's parameters, each in the dense op's order."""
    return (OPS["dense"].params(attrs["hidden"], (x,)),
            OPS["dense"].params(attrs["head"], (hidden_shape(attrs, x),)))


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    first, second = part_params(attrs, shapes[0])
    return (*first, *second)


def parts(node: Node, x: Shape) -> tuple[Node, Node]:
    """The two dense nodes a dense_pair node stands for, given its input's shape: the hidden
    layer (under `hidden_name`, reading the node's input) and the head (the node's name,
    reading the hidden layer), each with its own parameters and shape."""
    attrs = node.attrs
    first = len(part_params(attrs, x)[0])
    hidden = Node(name=attrs["hidden_name"], op="dense", inputs=node.inputs,
                  attrs=attrs["hidden"], params=node.params[:first],
                  shape=hidden_shape(attrs, x), span=node.span, path=node.path)
    head = Node(name=node.name, op="dense", inputs=(hidden.name,), attrs=attrs["head"],
                params=node.params[first:], shape=node.shape, span=node.span, path=node.path)
    return hidden, head


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    middle = hidden_shape(attrs, shapes[0])
    return (OPS["dense"].flops(attrs["hidden"], shapes, middle)
            + OPS["dense"].flops(attrs["head"], (middle,), out))


def _reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    # each of the head's terms carries one hidden sum's rounding
    middle = hidden_shape(attrs, shapes[0])
    return (OPS["dense"].reduction(attrs["head"], (middle,))
            + OPS["dense"].reduction(attrs["hidden"], shapes))


register(OpDef(
    name=NAME, group="fused", base="dense",
    args=(Arg("hidden", part_attrs), Arg("head", part_attrs), Arg("hidden_name", A.text)),
    arity=(1, 1), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=_reduction,
    doc="A dense layer and the softmax head reading it as one op (inference): a classifier's "
        "last two layers in one launch at a few rows.",
))
