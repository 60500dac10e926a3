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
)
from cnnc.ir.graph import Node


def bind_rescaling(node: Node, ctx: BindContext) -> NodeBinding:
    n = ctx.numel(node.name)
    args = (Value(node.inputs[0]), Value(node.name), Int(n), Float(node.attrs["scale"]),
            Float(node.attrs["offset"]))
    return NodeBinding((elementwise_launch("preprocessing.cl", "rescaling", n, args,
                                           ctx.target),))


def bind_normalization(node: Node, ctx: BindContext) -> NodeBinding:
    """Operands (x, mean, variance); element-wise, each channel from its index."""
    x, mean, variance = node.operands
    n, cols = ctx.numel(node.name), ctx.shape(node.name)[-1]
    args = (Value(x), Value(mean), Value(variance), Value(node.name), Int(n), Int(cols))
    return NodeBinding((elementwise_launch("preprocessing.cl", "normalization", n, args,
                                           ctx.target),))


def bind_normalization_grad(node: Node, ctx: BindContext) -> NodeBinding:
    """Inputs (dy, variance); element-wise, each channel from its index."""
    dy, variance = node.inputs
    n, cols = ctx.numel(node.name), ctx.shape(node.name)[-1]
    args = (Value(dy), Value(variance), Value(node.name), Int(n), Int(cols))
    return NodeBinding((elementwise_launch("preprocessing.cl", "normalization_grad", n, args,
                                           ctx.target),))


BINDERS: dict[str, Binder] = {
    "rescaling": bind_rescaling,
    "normalization": bind_normalization,
    "normalization_grad": bind_normalization_grad,
}
