"""Ops of batch norm's gradient with its batch sums as a value of its own (data-parallel training,
and the sums shared with the parameters' gradients on one device).

On one device `batchnorm_grad_input` sums dy and dy * xhat over the batch inside its kernels.
Split over several ranks those sums must cover the global batch, so the sync_batchnorm pass
(cnnc/passes/sync_batchnorm.py) rewrites it into `batchnorm_grad_sums`, whose value the ranks
all-reduce between two kernels (an Exchange, cnnc/backends/base.py), and `batchnorm_grad_apply`,
which finishes the gradient from the reduced sums. On one rank the pair computes exactly what
`batchnorm_grad_input` does, with the same kernels.

On one device the same sums are the gradients of beta (row 0) and gamma (row 1): the training
pass cnnc/passes/share_bn_sums.py reads them as `sums_row` of the one `batchnorm_grad_sums`
value, so the batch is summed once per batch norm instead of three times.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs
from cnnc.ir.layers import BN_NORMALISE_ARGS
from cnnc.ir.ops import OpDef, register, row_terms
from cnnc.ir.shapes import Shape


def _sums_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return (2, shapes[0][-1])


def _like_x(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return shapes[0]


register(OpDef(
    name="batchnorm_grad_sums", group="parallel", args=BN_NORMALISE_ARGS, arity=(3, 3),
    infer=_sums_infer, reduction=row_terms(0),
    doc="Row 0: sum(dy), row 1: sum(dy * xhat), over every axis but the last, with xhat the x "
        "normalised by stats. Inputs (x, stats, dy).",
))

register(OpDef(
    name="batchnorm_grad_apply", group="parallel", args=BN_NORMALISE_ARGS, arity=(4, 5),
    infer=_like_x, reduction=row_terms(0),
    doc="batchnorm_grad_input with the sums given: g = dy*gamma, dx = (g - gamma*sums[0]/R - "
        "xhat*gamma*sums[1]/R) / sqrt(var + epsilon), R the rows of x (every axis but the "
        "last). Inputs (x, stats, dy, sums[, gamma]).",
))


def _row_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    if len(x) != 2 or attrs["row"] >= x[0]:
        raise ShapeError(f"row {attrs['row']} of a value of shape {x}: expected a 2-D value "
                         "with more rows")
    return (x[1],)


register(OpDef(
    name="sums_row", group="gradient", args=(Arg("row", A.non_negative_int),), arity=(1, 1),
    infer=_row_infer,
    doc="Row `row` of a 2-D value (batchnorm_grad_sums's: 0 the gradient of beta, 1 of gamma). "
        "Input (sums,).",
))
