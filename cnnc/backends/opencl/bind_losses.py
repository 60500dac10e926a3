"""Binders of the loss ops (cnnc/ir/losses.py) and their table `BINDERS`, keyed by op name."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    BindContext,
    Binder,
    Float,
    Int,
    NodeBinding,
    Value,
    Workspace,
    launch,
)
from cnnc.backends.opencl.primitives import (
    sum_all,
)
from cnnc.backends.opencl.tiling import (
    flat,
)
from cnnc.ir.graph import Node


def _sparse_define(node: Node) -> dict[str, int]:
    """losses.cl's -D SPARSE: targets as class indices (int32) instead of one row each."""
    return {"SPARSE": int(bool(node.attrs.get("sparse", False)))}


def _smoothing(node: Node) -> tuple[Float, ...]:
    """The cross-entropies' last kernel argument, their label smoothing (a float, not a -D)."""
    if node.op == "mean_squared_error":
        return ()
    return (Float(float(node.attrs.get("label_smoothing", 0.0))),)


def bind_row_loss(node: Node, ctx: BindContext) -> NodeBinding:
    """A loss: one value per row into a workspace, then their mean."""
    pred, target = node.inputs
    rows, cols = ctx.rows_cols(pred)
    per_row = Workspace(0)
    args = (Value(pred), Value(target), per_row, Int(rows), Int(cols), *_smoothing(node))
    losses = launch("losses.cl", node.op, flat(rows), args, _sparse_define(node))
    scale = 1.0 / (rows * cols) if node.op == "mean_squared_error" else 1.0 / rows
    mean = sum_all(per_row, Value(node.name), rows, scale)
    return NodeBinding((losses, mean), workspaces=(rows,))


def bind_row_loss_grad(node: Node, ctx: BindContext) -> NodeBinding:
    pred, target = node.inputs
    rows, cols = ctx.rows_cols(pred)
    args = (Value(pred), Value(target), Value(node.name), Int(rows), Int(cols), Float(1.0 / rows),
            *_smoothing(node))
    return NodeBinding((launch("losses.cl", node.op, flat(rows), args, _sparse_define(node)),))


def bind_mean_squared_error_grad(node: Node, ctx: BindContext) -> NodeBinding:
    pred, target = node.inputs
    n = ctx.numel(pred)
    args = (Value(pred), Value(target), Value(node.name), Int(n), Float(1.0 / n))
    return NodeBinding((launch("losses.cl", "mean_squared_error_grad", flat(n), args),))


BINDERS: dict[str, Binder] = {
    "softmax_cross_entropy": bind_row_loss,
    "softmax_cross_entropy_grad": bind_row_loss_grad,
    "cross_entropy": bind_row_loss,
    "cross_entropy_grad": bind_row_loss_grad,
    "mean_squared_error": bind_row_loss,
    "mean_squared_error_grad": bind_mean_squared_error_grad,
}
