"""Binders of the preprocessing layers and normalization's gradient (cnnc/ir/preprocessing.py):
node -> launches of kernels/preprocessing.cl, and their table `BINDERS`. Rescaling's gradient is
a rescaling node too, bound by the same function."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    BindContext,
    Binder,
    Float,
    Int,
    NodeBinding,
    Value,
    elementwise_launch,
    launch,
)
from cnnc.backends.opencl.tiling import flat
from cnnc.ir.graph import Node


def bind_rescaling(node: Node, ctx: BindContext) -> NodeBinding:
    n = ctx.numel(node.name)
    args = (Value(node.inputs[0]), Value(node.name), Int(n), Float(node.attrs["scale"]),
            Float(node.attrs["offset"]))
    return NodeBinding((elementwise_launch("preprocessing.cl", "rescaling", n, args,
                                           ctx.target),))


def bind_normalization(node: Node, ctx: BindContext) -> NodeBinding:
    """Operands (x, mean, variance); one work-item per row of the last axis."""
    x, mean, variance = node.operands
    rows, cols = ctx.rows_cols(node.name)
    args = (Value(x), Value(mean), Value(variance), Value(node.name), Int(rows), Int(cols))
    return NodeBinding((launch("preprocessing.cl", "normalization", flat(rows), args),))


def bind_normalization_grad(node: Node, ctx: BindContext) -> NodeBinding:
    """Inputs (dy, variance); one work-item per row of the last axis."""
    dy, variance = node.inputs
    rows, cols = ctx.rows_cols(node.name)
    args = (Value(dy), Value(variance), Value(node.name), Int(rows), Int(cols))
    return NodeBinding((launch("preprocessing.cl", "normalization_grad", flat(rows), args),))


BINDERS: dict[str, Binder] = {
    "rescaling": bind_rescaling,
    "normalization": bind_normalization,
    "normalization_grad": bind_normalization_grad,
}
