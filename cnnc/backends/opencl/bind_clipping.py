"""Binders of the gradient-clipping ops (cnnc/ir/clipping.py): node -> launches of
kernels/clipping.cl, and their table `BINDERS`. The squared norms are summed in two
deterministic stages (parts of each gradient, then the parts in order) on the device."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    NULL,
    BindContext,
    Binder,
    Float,
    Int,
    NodeBinding,
    Value,
    Workspace,
    elementwise_launch,
    launch,
)
from cnnc.backends.opencl.tiling import column_chunks, flat
from cnnc.ir.graph import Node


def bind_square_sum(node: Node, ctx: BindContext) -> NodeBinding:
    """Inputs (x[, running]): parts of x into Workspace(0), then their sum (+ running)."""
    x, *running = node.inputs
    n = ctx.numel(x)
    chunks = column_chunks(n, 1, ctx.target)
    partial = launch("clipping.cl", "square_sum_partial", flat(chunks),
                     (Value(x), Workspace(0), Int(n), Int(chunks)))
    finish = launch("clipping.cl", "square_sum_finish", flat(1),
                    (Workspace(0), Value(running[0]) if running else NULL, Value(node.name),
                     Int(chunks)), {"RUNNING": int(bool(running))})
    return NodeBinding((partial, finish), workspaces=(chunks,))


def bind_clip_coefficient(node: Node, ctx: BindContext) -> NodeBinding:
    args = (Value(node.inputs[0]), Value(node.name), Float(node.attrs["max_norm"]))
    return NodeBinding((launch("clipping.cl", "clip_coefficient", flat(1), args),))


def bind_scale_gradient(node: Node, ctx: BindContext) -> NodeBinding:
    g, coefficient = node.inputs
    n = ctx.numel(node.name)
    args = (Value(g), Value(coefficient), Value(node.name), Int(n))
    return NodeBinding((elementwise_launch("clipping.cl", "scale_gradient", n, args,
                                           ctx.target),))


BINDERS: dict[str, Binder] = {
    "square_sum": bind_square_sum,
    "clip_coefficient": bind_clip_coefficient,
    "scale_gradient": bind_scale_gradient,
}
