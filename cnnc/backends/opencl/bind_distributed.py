"""OpenCL bindings of batch norm's sums ops (cnnc/ir/distributed_ops.py), and their `BINDERS`.

They are `batchnorm_grad_input`'s own launches (bind_train.py) cut in two where the batch sums
are complete: the two column sums write a graph value instead of a workspace, and the final
kernel reads it. The kernels are the same, so one rank computes what one device does.
"""

from __future__ import annotations

from cnnc.backends.opencl.launches import NULL, BindContext, Binder, NodeBinding, Value
from cnnc.backends.opencl.primitives import batchnorm_grad_apply, batchnorm_grad_sums, copy_block
from cnnc.ir.graph import Node


def bind_batchnorm_grad_sums(node: Node, ctx: BindContext) -> NodeBinding:
    """[sum(dy); sum(dy * xhat)] per channel: two column sums into the node's (2, C) value."""
    launches, work = batchnorm_grad_sums(node, ctx, Value(node.name))
    return NodeBinding(launches, workspaces=(work,))


def bind_batchnorm_grad_apply(node: Node, ctx: BindContext) -> NodeBinding:
    x, stats, dy, sums = node.inputs[:4]
    gamma = Value(node.inputs[4]) if len(node.inputs) > 4 else NULL
    final = batchnorm_grad_apply(ctx, x, stats, dy, gamma, Value(sums), Value(node.name),
                                 node.attrs["epsilon"])
    return NodeBinding((final,))


def bind_sums_row(node: Node, ctx: BindContext) -> NodeBinding:
    """One row of the (rows, C) sums (a parameter's gradient): row 0 of sums the graph computes
    is their first C floats, their storage under the row's shape (no launch); another row, or
    sums held as state (a node run alone, crosscheck.py), a copy of C floats."""
    (sums,) = node.inputs
    if node.attrs["row"] == 0 and sums in ctx.graph.node_map:
        return NodeBinding(view_of=sums)
    rows, cols = ctx.shape(sums)
    copy = copy_block(sums, node.name, (rows, cols), 0, 1, src_axis=rows,
                      src_start=node.attrs["row"], dst_axis=1, target=ctx.target)
    return NodeBinding((copy,))


BINDERS: dict[str, Binder] = {
    "batchnorm_grad_sums": bind_batchnorm_grad_sums,
    "batchnorm_grad_apply": bind_batchnorm_grad_apply,
    "sums_row": bind_sums_row,
}
