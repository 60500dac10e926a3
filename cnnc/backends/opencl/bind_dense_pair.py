"""Binder of dense_pair (cnnc/ir/dense_pair.py): node -> launches, and its table `BINDERS`.

At up to FUSE_ROWS rows, a hidden layer of up to HIDDEN_MAX_MACS multiply-adds a row and a head
gemv.cl's dense_softmax would take (bind_gemv.head_applies): one kernels/dense_pair.cl launch,
a work-group per row holding the hidden vector and the logits in local memory. On a CPU the
group is one work-item (pocl runs a group's work-items as a loop, so more would only add the
barriers' splits) whose layers take the widest vectors dividing their units; on a GPU up to
GPU_GROUP work-items over the units, one each. Anything else is unfused, never computed
elsewhere: the hidden layer's binding (its tuned variant) into a workspace, then the head's
reading it, the launches of the graph without the fusion (so batch 256 runs as before).
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.backends.opencl import bind_gemv
from cnnc.backends.opencl.algorithms import chosen_algorithm
from cnnc.backends.opencl.launches import (
    NULL,
    Arg,
    BindContext,
    Binder,
    NodeBinding,
    Value,
    Workspace,
    launch,
    redirect,
)
from cnnc.backends.opencl.primitives import epilogue_act
from cnnc.backends.opencl.tiling import FLOAT_BYTES, vector_width
from cnnc.ir.dense_pair import parts
from cnnc.ir.graph import Node

# Rows up to which the pair is one launch: gemv.cl's, where its head is one launch too.
FUSE_ROWS = bind_gemv.GEMV_ROWS
# Multiply-adds a row of the hidden layer up to which one work-group (one core) takes it: the
# gemv launch it saves spreads a larger layer over the cores. The example specs' fused layers
# have 8,192-15,360.
HIDDEN_MAX_MACS = 32768
GPU_GROUP = 128  # work-items per group on a GPU: a few warps over the units



def fuses(node: Node, hidden: Node, head: Node, ctx: BindContext) -> bool:
    """Whether the pair runs as one dense_pair.cl launch at this batch on this target."""
    rows, k = ctx.rows_cols(node.inputs[0])
    units, classes = hidden.attrs["units"], head.attrs["units"]
    return (rows <= FUSE_ROWS and k * units <= HIDDEN_MAX_MACS
            # (its own work-item layout: the head's serial tile does not apply)
            and bind_gemv.head_applies(head, replace(ctx, serial=False))
            and (units + classes) * FLOAT_BYTES <= ctx.target.limits.local_memory)


def group_size(units: int, classes: int, ctx: BindContext) -> int:
    """LS: one work-item on a CPU; on a GPU a power of two up to GPU_GROUP and the device's
    group size, no more than the larger layer's units."""
    if ctx.target.kind == "cpu":
        return 1
    limits = ctx.target.limits
    cap = min(GPU_GROUP, limits.max_group, limits.max_item_sizes[0])
    ls = 1
    while 2 * ls <= cap and ls < max(units, classes):
        ls *= 2
    return ls


def bind_dense_pair(node: Node, ctx: BindContext) -> NodeBinding:
    (x,) = node.inputs
    hidden, head = parts(node, ctx.shape(x))
    inner_ctx = replace(ctx, graph=ctx.graph.with_nodes((*ctx.graph.nodes, hidden)))
    if fuses(node, hidden, head, inner_ctx):
        rows, k = ctx.rows_cols(x)
        units, classes = hidden.attrs["units"], head.attrs["units"]
        ls = group_size(units, classes, ctx)
        vh = vector_width(units, ctx.target) if ls == 1 else 1
        vn = vector_width(classes, ctx.target) if ls == 1 else 1
        b1 = Value(hidden.params[1]) if hidden.attrs["use_bias"] else NULL
        b2 = Value(head.params[1]) if head.attrs["use_bias"] else NULL
        defines = {"K": k, "H": units, "N": classes, "VH": vh, "VN": vn, "VW": vh, "LS": ls,
                   "HAS_B1": int(b1 != NULL), "HAS_B2": int(b2 != NULL),
                   **epilogue_act(hidden)}
        args = (Value(x), Value(hidden.params[0]), b1, Value(head.params[0]), b2,
                Value(node.name))
        return NodeBinding((launch("dense_pair.cl", "dense_pair", (rows * ls,), args, defines,
                                   (ls,)),))
    # Unfused: the hidden layer's launches write a workspace the head's launches read; each
    # binding's own workspaces renumbered after it.
    first = chosen_algorithm(hidden, inner_ctx).bind(hidden, inner_ctx)
    second = chosen_algorithm(head, inner_ctx).bind(head, inner_ctx)
    vector = Workspace(len(first.workspaces))
    shift = len(first.workspaces) + 1
    renumber: dict[Arg, Arg] = {Workspace(i): Workspace(i + shift)
                                for i in range(len(second.workspaces))}
    launches = (*(redirect(lau, {Value(hidden.name): vector}) for lau in first.launches),
                *(redirect(lau, {**renumber, Value(hidden.name): vector})
                  for lau in second.launches))
    return NodeBinding(
        launches,
        workspaces=(*first.workspaces, inner_ctx.numel(hidden.name), *second.workspaces),
        zeros=max(first.zeros, second.zeros),
        constants=(*first.constants, *(i + shift for i in second.constants)))


BINDERS: dict[str, Binder] = {"dense_pair": bind_dense_pair}
