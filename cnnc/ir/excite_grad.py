"""Squeeze-and-excitation's input gradient as one op, made by the training pass
cnnc/passes/fuse_excite_grad.py, never written in a spec.

A map x read by a global average pooling (the squeeze) and by a product with a (1, 1, C) gate
(the excitation) gets its gradient from both, as three nodes of its own size: multiply_grad
(dm * gate), global_avgpool2d_grad (dpool / (H*W) broadcast) and the add of the two.
``excite_grad(dm, gate, dpool)`` computes dx = dm * gate + dpool / (H*W) in one pass over
memory. Inputs: dm of x's shape (N, H, W, C), gate and dpool of shape (N, 1, 1, C) or (N, C).
"""

from __future__ import annotations

from math import prod

from cnnc.errors import ShapeError
from cnnc.ir.args import Attrs
from cnnc.ir.ops import OpDef, register
from cnnc.ir.shapes import Shape, shape_str


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    dm, gate, dpool = shapes
    for name, s in (("gate", gate), ("pooled gradient", dpool)):
        if len(dm) != 4 or prod(s[1:]) != dm[-1] or s[-1] != dm[-1]:
            raise ShapeError(f"the {name} {shape_str(s)} is not one value per channel of the "
                             f"map's gradient {shape_str(dm)}")
    return dm


register(OpDef(
    name="excite_grad", group="gradient", args=(), arity=(3, 3), infer=_infer,
    doc="dx = dm * gate + dpool / (H*W), gate and dpool broadcast over height and width: a "
        "squeeze-and-excitation input's gradient through the product and the pooling. Inputs "
        "(dm, gate, dpool).",
))
