"""Gradient clipping in the op table: the training-only ops that scale every gradient by one
coefficient so that their global L2 norm is at most `global_clipnorm` (the training pass is
cnnc/passes/clip_gradients.py), and the optimizer options that ask for it.

The coefficient is PyTorch's clip_grad_norm_: min(1, max_norm / (total_norm + 1e-6)) with
total_norm the L2 norm of all trainable parameters' gradients together; Keras' global_clipnorm
computes max_norm / max(total_norm, max_norm), which differs from it by the 1e-6 only.
"""

from __future__ import annotations

from typing import Any

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs
from cnnc.ir.ops import OpDef, element_terms, register
from cnnc.ir.shapes import Shape, shape_str

# PyTorch's clip_grad_norm_: added to the norm before dividing by it.
CLIP_EPSILON = 1e-6


def optional_positive_real(name: str, value: Any) -> float | None:
    return None if value is None else A.positive_real(name, value)


# Keras' optimizer argument (tf.keras.optimizers.Adam(global_clipnorm=1.0)); cnnc takes it in
# the train section's optimizer mapping beside the learning rate.
CLIP_OPTIONS = (
    Arg("global_clipnorm", optional_positive_real, None,
        doc="clip the gradients of all trainable parameters together to this L2 norm"),
)


def _scalar(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    if len(shapes) == 2 and shapes[1] != (1,):
        raise ShapeError(f"the running sum has shape {shape_str(shapes[1])}, expected (1,)")
    return (1,)


register(OpDef(
    name="square_sum", group="gradient", args=(), arity=(1, 2), infer=_scalar,
    reduction=lambda attrs, shapes: element_terms(attrs, shapes) + len(shapes) - 1,
    doc="(1,): the sum of the squares of every element of x, plus the running sum if given. "
        "Inputs (x[, running (1,)]): chained over the gradients, the last is their squared "
        "global norm.",
))


def _coefficient(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    if shapes[0] != (1,):
        raise ShapeError(f"expects the (1,) squared norm, got {shape_str(shapes[0])}")
    return (1,)


register(OpDef(
    name="clip_coefficient", group="gradient",
    args=(Arg("max_norm", A.positive_real),), arity=(1, 1), infer=_coefficient,
    doc="(1,): min(1, max_norm / (sqrt(squared_norm) + 1e-6)), PyTorch's clip_grad_norm_. "
        "Inputs (squared_norm (1,)).",
))


def _like_grad(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    if shapes[1] != (1,):
        raise ShapeError(f"the coefficient has shape {shape_str(shapes[1])}, expected (1,)")
    return shapes[0]


register(OpDef(
    name="scale_gradient", group="gradient", args=(), arity=(2, 2), infer=_like_grad,
    doc="g * coefficient[0]. Inputs (g, coefficient (1,)).",
))
