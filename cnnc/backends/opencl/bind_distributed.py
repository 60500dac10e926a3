"""OpenCL bindings of the data-parallel ops (cnnc/ir/distributed_ops.py), and their `BINDERS`.

They are `batchnorm_grad_input`'s own launches (bind_train.py) cut in two where the batch sums
are complete: the two column sums write a graph value instead of a workspace, and the final
kernel reads it. The kernels are the same, so one rank computes what one device does.
"""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    NULL,
    BindContext,
    Binder,
    Float,
    Int,
    NodeBinding,
    Value,
    launch,
)
from cnnc.backends.opencl.primitives import SUM_B_XHAT, affine_defines, column_sum
from cnnc.backends.opencl.tiling import flat
from cnnc.ir.graph import Node


def bind_batchnorm_grad_sums(node: Node, ctx: BindContext) -> NodeBinding:
    """[sum(dy); sum(dy * xhat)] per channel: two column sums into the node's (2, C) value."""
    x, stats, dy = node.inputs
    rows, cols = ctx.rows_cols(x)
    out = Value(node.name)
    dy_sum, work = column_sum(ctx, Value(dy), out, rows, cols)
    dyx_sum, _ = column_sum(
        ctx,
        Value(x),
        out,
        rows,
        cols,
        mode=SUM_B_XHAT,
        b=Value(dy),
        stats=Value(stats),
        eps=node.attrs["epsilon"],
        out_offset=cols,
    )
    return NodeBinding(dy_sum + dyx_sum, workspaces=(work,))


def bind_batchnorm_grad_apply(node: Node, ctx: BindContext) -> NodeBinding:
    x, stats, dy, sums = node.inputs[:4]
    gamma = Value(node.inputs[4]) if len(node.inputs) > 4 else NULL
    rows, cols = ctx.rows_cols(x)
    args = (
        Value(x),
        Value(stats),
        Value(dy),
        gamma,
        Value(sums),
        Value(node.name),
        Int(rows * cols),
        Int(cols),
        Float(node.attrs["epsilon"]),
        Float(1.0 / rows),
    )
    defines = affine_defines(gamma, NULL)
    return NodeBinding(
        (launch("batchnorm.cl", "batchnorm_grad_input", flat(rows * cols), args, defines),)
    )


BINDERS: dict[str, Binder] = {
    "batchnorm_grad_sums": bind_batchnorm_grad_sums,
    "batchnorm_grad_apply": bind_batchnorm_grad_apply,
}
