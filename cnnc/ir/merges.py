"""Merge layers beyond add and concatenate (cnnc/ir op table): Keras' Multiply, Subtract,
Maximum, Minimum and Average with broadcasting, and the gradient ops their rules emit.

Broadcasting (cnnc/ir/broadcast.py) follows Keras: NumPy's rule on the non-batch axes, a
lower-rank input getting size-1 axes after the batch axis. The gradient of a broadcast operand
sums over the axes it was broadcast along. Ties of maximum and minimum share the gradient
evenly, as PyTorch's torch.maximum and torch.minimum do; an n-ary one is the left fold of the
binary one (max(max(x0, x1), x2)), differentiated as such.
"""

from __future__ import annotations

from math import prod

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.activations import flops as activation_flops
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.broadcast import broadcast_shapes, padded
from cnnc.ir.layers import ACTIVATION_ARG
from cnnc.ir.ops import OPS, OpDef, register
from cnnc.ir.shapes import Shape, numel, shape_str

INPUT_SHAPE = Arg("input_shape", A.shape, doc="the forward input's shape without batch")


def merge_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return broadcast_shapes(shapes)


def _pairwise_flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    return numel(out) * (len(shapes) - 1)


def _terms(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    return len(shapes)


# name, Keras class, arity, FLOPs, doc
_MERGES = (
    ("multiply", "Multiply", (2, None), _pairwise_flops,
     ("Elementwise product of the inputs, broadcast like NumPy on the non-batch axes (a "
     "(1, 1, C) gate times an (H, W, C) map: squeeze-and-excitation).")),
    ("subtract", "Subtract", (2, 2), _pairwise_flops,
     "inputs[0] - inputs[1], broadcast like NumPy on the non-batch axes."),
    ("maximum", "Maximum", (2, None), _pairwise_flops,
     "Elementwise maximum, broadcast; ties share the gradient evenly (PyTorch's rule)."),
    ("minimum", "Minimum", (2, None), _pairwise_flops,
     "Elementwise minimum, broadcast; ties share the gradient evenly (PyTorch's rule)."),
    ("average", "Average", (2, None), lambda attrs, shapes, out: numel(out) * len(shapes),
     "Elementwise mean of the inputs, broadcast like NumPy on the non-batch axes."),
)

for _name, _keras, _arity, _flops, _doc in _MERGES:
    register(OpDef(
        name=_name, group="layer", kind="merging", keras_name=_keras, aliases=(_keras,),
        args=(), arity=_arity, infer=merge_infer, flops=_flops, reduction=_terms, doc=_doc,
    ))


# ---------------------------------------------------------------- gradients


def _to_input_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    out = broadcast_shapes(shapes)
    target = (shapes[0][0], *attrs["input_shape"])
    if broadcast_shapes((out, target)) != out or len(target) > len(out):
        raise ShapeError(f"input_shape {shape_str(target)} does not broadcast to "
                         f"{shape_str(out)}")
    return target


def _summed_terms(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    """Terms summed into one element of the operand's gradient: the broadcast positions."""
    out = broadcast_shapes(shapes)
    target = padded((out[0], *attrs["input_shape"]), len(out))
    return max(1, prod(o // t for o, t in zip(out[1:], target[1:])))


register(OpDef(
    name="unbroadcast", group="gradient",
    args=(INPUT_SHAPE, Arg("scale", A.finite_real, 1.0)),
    arity=(1, 1), infer=_to_input_shape, reduction=_summed_terms,
    doc="scale * dy summed over the axes the operand was broadcast along, to input_shape "
        "(the gradient of add, subtract (scale -1 for the second input) and average "
        "(scale 1/n)). Input (dy,).",
))

register(OpDef(
    name="multiply_grad", group="gradient", args=(INPUT_SHAPE,), arity=(2, 2),
    infer=_to_input_shape, reduction=_summed_terms,
    doc="dy * other summed over the broadcast axes to input_shape: an operand's gradient of a "
        "product, `other` the product of the other operands. Inputs (dy, other).",
))

for _name, _wins in (("maximum", "x > other"), ("minimum", "x < other")):
    register(OpDef(
        name=f"{_name}_grad", group="gradient", args=(INPUT_SHAPE,), arity=(3, 3),
        infer=_to_input_shape, reduction=_summed_terms,
        doc=f"dy * w summed over the broadcast axes to input_shape, w = 1 where {_wins}, 1/2 "
            "where x == other, 0 elsewhere: x's gradient of the binary " + _name
            + ". Inputs (dy, x, other).",
    ))


# ---------------------------------------------------------------- fused: merge + activation


def _check_elementwise(attrs: Attrs) -> None:
    if not ACTIVATIONS[attrs["activation"]].elementwise:
        raise ArgError(f"activation '{attrs['activation']}' spans a row and cannot be applied "
                       "as a merge stores; expected an element-wise activation")


FUSED_MERGE: dict[str, str] = {}
"""merge -> `<merge>_act`, the merge with the activation after it applied as it stores (made by
cnnc/passes/fuse_merge.py at inference): a squeeze-excite block's x * gate and a residual join's
add then relu write their result once."""

for _name in ("add", "multiply", "subtract", "maximum", "minimum", "average"):
    _base = OPS[_name]
    FUSED_MERGE[_name] = register(OpDef(
        name=f"{_name}_act", group="fused", args=(ACTIVATION_ARG,), arity=_base.arity,
        infer=_base.infer, check=_check_elementwise, reduction=_base.reduction,
        flops=lambda attrs, shapes, out, f=_base.flops: (
            f(attrs, shapes, out) + numel(out) * activation_flops(attrs)),
        fuses_activation=True, base=_name,
        doc=f"{_name} then an element-wise activation, as one node (inference).",
    )).name
