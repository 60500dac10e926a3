"""Binders of layer normalisation and its gradient ops (cnnc/ir/layer_norm.py): node ->
launches of kernels/layer_norm.cl, and their table `BINDERS`, keyed by op name."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    NULL,
    Arg,
    BindContext,
    Binder,
    Float,
    Int,
    NodeBinding,
    Value,
    Workspace,
    launch,
)
from cnnc.backends.opencl.primitives import CHANNEL_ROWS, affine_defines, sum_parts
from cnnc.backends.opencl.tiling import column_chunks, flat, row_groups, vector_width
from cnnc.ir.graph import Node


def _affine(node: Node, params: tuple[str, ...]) -> tuple[Arg, Arg]:
    """(gamma, beta) of a layer_norm node's parameters, NULL where it has none."""
    rest = list(params)
    gamma = Value(rest.pop(0)) if node.attrs["scale"] else NULL
    beta = Value(rest.pop(0)) if node.attrs["center"] else NULL
    return gamma, beta


def bind_layer_norm(node: Node, ctx: BindContext) -> NodeBinding:
    """One work-item per row of the last axis, reading it a vector of VW channels at a time."""
    gamma, beta = _affine(node, node.params)
    rows, cols = ctx.rows_cols(node.name)
    args = (Value(node.inputs[0]), gamma, beta, Value(node.name), Int(rows), Int(cols),
            Float(node.attrs["epsilon"]))
    defines = {**affine_defines(gamma, beta), "VW": vector_width(cols, ctx.target)}
    return NodeBinding((launch("layer_norm.cl", "layer_norm", flat(rows), args, defines),))


def bind_layer_norm_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
    """Inputs (x, dy[, gamma]); one work-item per row, its statistics recomputed from x."""
    x, dy, *rest = node.inputs
    gamma = Value(rest[0]) if rest else NULL
    rows, cols = ctx.rows_cols(x)
    args = (Value(x), Value(dy), gamma, Value(node.name), Int(rows), Int(cols),
            Float(node.attrs["epsilon"]))
    defines = {**affine_defines(gamma, NULL), "VW": vector_width(cols, ctx.target)}
    return NodeBinding((launch("layer_norm.cl", "layer_norm_grad_input", flat(rows), args,
                               defines),))


def bind_layer_norm_grad_gamma(node: Node, ctx: BindContext) -> NodeBinding:
    """sum(dy * xhat) over the rows, on the device: each row's statistics into Workspace(0),
    chunks of rows summed per column into Workspace(1), then the chunks added up in order."""
    x, dy = node.inputs
    rows, cols = ctx.rows_cols(x)
    eps = Float(node.attrs["epsilon"])
    stats = launch("layer_norm.cl", "layer_norm_stats", flat(rows),
                   (Value(x), Workspace(0), Int(rows), Int(cols), eps),
                   {"VW": vector_width(cols, ctx.target)})
    chunks = column_chunks(rows, cols, ctx.target)
    grid = (cols, chunks)
    partial = launch("layer_norm.cl", "layer_norm_grad_gamma_partial", grid,
                     (Value(x), Value(dy), Workspace(0), Workspace(1), Int(rows), Int(cols),
                      Int(chunks)),
                     local_size=row_groups(grid, ctx.target, across=0))
    finish = sum_parts(Workspace(1), Value(node.name), cols, chunks, ctx.target)
    return NodeBinding((stats, partial, finish), workspaces=(2 * rows, chunks * cols))


def bind_layer_norm_grad_sums(node: Node, ctx: BindContext) -> NodeBinding:
    """[sum(dy); sum(dy * xhat)] over the rows: chunks of rows, a work-item each, summed into
    Workspace(0) in one pass over x and dy, then the chunks added up in order."""
    x, dy = node.inputs
    rows, cols = ctx.rows_cols(x)
    chunks = max(1, rows // CHANNEL_ROWS.get(ctx.target.kind, 4))
    partial = launch("layer_norm.cl", "layer_norm_grad_sums_partial", flat(chunks),
                     (Value(x), Value(dy), Workspace(0), Int(rows), Int(cols), Int(chunks),
                      Float(node.attrs["epsilon"])),
                     {"VW": vector_width(cols, ctx.target)})
    finish = sum_parts(Workspace(0), Value(node.name), 2 * cols, chunks, ctx.target)
    return NodeBinding((partial, finish), workspaces=(2 * chunks * cols,))


BINDERS: dict[str, Binder] = {
    "layer_norm": bind_layer_norm,
    "layer_norm_grad_input": bind_layer_norm_grad_input,
    "layer_norm_grad_gamma": bind_layer_norm_grad_gamma,
    "layer_norm_grad_sums": bind_layer_norm_grad_sums,
}
