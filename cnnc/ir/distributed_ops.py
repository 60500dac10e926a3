"""Ops of data-parallel training: batch norm's gradient with its batch sums as a value of its own.

On one device `batchnorm_grad_input` sums dy and dy * xhat over the batch inside its kernels.
Split over several ranks those sums must cover the global batch, so the sync_batchnorm pass
(cnnc/passes/sync_batchnorm.py) rewrites it into `batchnorm_grad_sums`, whose value the ranks
all-reduce between two kernels (an Exchange, cnnc/backends/base.py), and `batchnorm_grad_apply`,
which finishes the gradient from the reduced sums. On one rank the pair computes exactly what
`batchnorm_grad_input` does, with the same kernels.
"""

from __future__ import annotations

from cnnc.ir.args import Attrs
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
