"""Binders of local response normalisation and its gradient (cnnc/ir/lrn.py): node -> launches
of kernels/lrn.cl, and their table `BINDERS`, keyed by op name."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    Arg,
    BindContext,
    Binder,
    Float,
    Int,
    NodeBinding,
    Value,
    Workspace,
    elementwise_launch,
)
from cnnc.ir.graph import Node


def _window(node: Node, n: int, cols: int) -> tuple[tuple[Arg, ...], dict[str, int]]:
    """The kernels' trailing arguments (n, cols, alpha/size, beta, bias) and -D SIZE."""
    a = node.attrs
    args = (Int(n), Int(cols), Float(a["alpha"] / a["size"]), Float(a["beta"]),
            Float(a["bias"]))
    return args, {"SIZE": a["size"]}


def bind_lrn(node: Node, ctx: BindContext) -> NodeBinding:
    rows, cols = ctx.rows_cols(node.name)
    tail, defines = _window(node, rows * cols, cols)
    args = (Value(node.inputs[0]), Value(node.name), *tail)
    return NodeBinding((elementwise_launch("lrn.cl", "lrn", rows * cols, args, ctx.target,
                                           defines),))


def bind_lrn_grad(node: Node, ctx: BindContext) -> NodeBinding:
    """Inputs (x, dy): t = dy * x * d^(-beta-1) into Workspace(0), then dx from its window
    sums."""
    x, dy = node.inputs
    rows, cols = ctx.rows_cols(x)
    n = rows * cols
    tail, defines = _window(node, n, cols)
    scaled = elementwise_launch("lrn.cl", "lrn_grad_scaled", n,
                                (Value(x), Value(dy), Workspace(0), *tail), ctx.target, defines)
    grad = elementwise_launch("lrn.cl", "lrn_grad", n,
                              (Value(x), Value(dy), Workspace(0), Value(node.name), *tail),
                              ctx.target, defines)
    return NodeBinding((scaled, grad), workspaces=(n,))


BINDERS: dict[str, Binder] = {
    "lrn": bind_lrn,
    "lrn_grad": bind_lrn_grad,
}
