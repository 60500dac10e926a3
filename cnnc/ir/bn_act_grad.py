"""Fused gradient ops: batch norm's gradient through the activation after it, made by the training
pass cnnc/passes/fuse_bn_act_grad.py, never written in a spec.

With batch norm and its activation one node in training (batchnorm_train with an activation:
the normalised value v = xhat * gamma + beta is never stored), the activation's derivative is
taken where batch norm's gradient reads it: dv = act'(v) * dy, with v recomputed from x, the
batch statistics and the parameters (an activation differentiated from its output y, relu's
kind, recomputes y = act(v) first). No activation_grad pass over memory, and no v written in
the forward pass for the activations differentiated from their input (silu, gelu, hard_swish).

``batchnorm_act_grad_sums`` (x, stats, dy[, gamma][, beta]) -> (2, C):
[sum(dv); sum(dv * xhat)] over every axis but the last (batchnorm_grad_sums of dv).
``batchnorm_act_grad_apply`` (x, stats, dy, sums[, gamma][, beta]) -> dx:
batchnorm_grad_apply of dv with those sums. gamma and beta as the batch norm has them (its
`scale` and `center`); a missing one is 1 or 0.
"""

from __future__ import annotations

from cnnc.ir import args as A
from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.layers import BN_NORMALISE_ARGS
from cnnc.ir.ops import OpDef, register, row_terms
from cnnc.ir.shapes import Shape

ARGS = (*BN_NORMALISE_ARGS, Arg("activation", A.choice(*A.ACTIVATIONS)))


def _check(attrs: Attrs) -> None:
    if not ACTIVATIONS[attrs["activation"]].elementwise:
        raise ArgError(f"activation '{attrs['activation']}' spans a row; expected an "
                       "element-wise activation")


def _sums_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return (2, shapes[0][-1])


def _like_x(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return shapes[0]


register(OpDef(
    name="batchnorm_act_grad_sums", group="gradient", args=ARGS, arity=(3, 5),
    infer=_sums_infer, check=_check, reduction=row_terms(0),
    doc="Row 0: sum(dv), row 1: sum(dv * xhat), over every axis but the last, dv = act'(v) * dy "
        "with v = xhat * gamma + beta the batch norm's output before its activation. Inputs "
        "(x, stats, dy[, gamma][, beta]).",
))

register(OpDef(
    name="batchnorm_act_grad_apply", group="gradient", args=ARGS, arity=(4, 6),
    infer=_like_x, check=_check, reduction=row_terms(0),
    doc="batchnorm_grad_apply of dv = act'(v) * dy (batchnorm_act_grad_sums's dv) with the "
        "sums given. Inputs (x, stats, dy, sums[, gamma][, beta]).",
))
