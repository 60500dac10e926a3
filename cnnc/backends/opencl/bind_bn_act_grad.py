"""Binders of batch norm's gradient through its activation (cnnc/ir/bn_act_grad.py): node ->
launches of kernels/batchnorm.cl's fused gradient kernels, and their table `BINDERS`."""

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
from cnnc.backends.opencl.primitives import (
    affine_defines,
    channel_grid,
    channel_sum_chunks,
    sum_parts,
)
from cnnc.backends.opencl.tiling import row_groups, vector_width
from cnnc.ir.activations import ACTIVATIONS, kernel_defines
from cnnc.ir.graph import Node


def _affine(node: Node, rest: list[str]) -> tuple[Arg, Arg]:
    """(gamma, beta) from the inputs after the fixed ones, NULL where the batch norm has none."""
    gamma = Value(rest.pop(0)) if node.attrs["scale"] else NULL
    beta = Value(rest.pop(0)) if node.attrs["center"] else NULL
    return gamma, beta


def _act_defines(node: Node) -> dict[str, int]:
    act = node.attrs["activation"]
    return {**kernel_defines(act), "ACT_FROM_INPUT": int(ACTIVATIONS[act].from_input)}


def bind_batchnorm_act_grad_sums(node: Node, ctx: BindContext) -> NodeBinding:
    """[sum(dv); sum(dv * xhat)] in one pass over x and dy into a [chunks, 2 * C] workspace,
    then its chunks added up in order, as batchnorm_grad_sums's (primitives.py)."""
    x, stats, dy, *rest = node.inputs
    gamma, beta = _affine(node, rest)
    rows, cols = ctx.rows_cols(x)
    chunks = channel_sum_chunks(rows, cols, ctx.target)
    vw = vector_width(cols, ctx.target)
    grid = (cols // vw, chunks)
    partial = launch(
        "batchnorm.cl", "batchnorm_act_grad_partial", grid,
        (Value(x), Value(dy), Value(stats), gamma, beta, Workspace(0), Int(rows), Int(cols),
         Int(chunks), Float(node.attrs["epsilon"])),
        {**affine_defines(gamma, beta), **_act_defines(node), "VW": vw},
        row_groups(grid, ctx.target, across=0),
    )
    finish = sum_parts(Workspace(0), Value(node.name), 2 * cols, chunks, ctx.target)
    return NodeBinding((partial, finish), workspaces=(2 * chunks * cols,))


def bind_batchnorm_act_grad_apply(node: Node, ctx: BindContext) -> NodeBinding:
    x, stats, dy, sums, *rest = node.inputs
    gamma, beta = _affine(node, rest)
    rows, cols = ctx.rows_cols(x)
    grid, group, vw, chunks = channel_grid(ctx, rows, cols)
    args = (Value(x), Value(stats), Value(dy), gamma, beta, Value(sums), Value(node.name),
            Int(rows), Int(cols), Int(chunks), Float(node.attrs["epsilon"]), Float(1.0 / rows))
    defines = {**affine_defines(gamma, beta), **_act_defines(node), "VW": vw}
    return NodeBinding((launch("batchnorm.cl", "batchnorm_act_grad_input", grid, args, defines,
                               group),))


BINDERS: dict[str, Binder] = {
    "batchnorm_act_grad_sums": bind_batchnorm_act_grad_sums,
    "batchnorm_act_grad_apply": bind_batchnorm_act_grad_apply,
}
