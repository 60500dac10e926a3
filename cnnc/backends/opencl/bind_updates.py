"""Binders of the update ops (cnnc/ir/updates.py) and their table `BINDERS`, keyed by op name."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    NULL,
    SCALARS_AT,
    UPDATE_SCALARS,
    BindContext,
    Binder,
    Float,
    Int,
    NodeBinding,
    Value,
    elementwise_launch,
)
from cnnc.ir.graph import Node


def bind_moving_average_update(node: Node, ctx: BindContext) -> NodeBinding:
    moving, stats = node.inputs
    n = ctx.numel(moving)
    args = (
        Value(moving),
        Value(stats),
        Int(n),
        Int(node.attrs["index"]),
        Float(node.attrs["momentum"]),
    )
    return NodeBinding((elementwise_launch("updates.cl", "moving_average_update", n, args, ctx.target),))


# Update ops that run another op's kernel (AdamW is Adam with its weight decay on by default).
KERNEL_OF = {"adamw_update": "adam_update"}


def bind_optimizer_update(node: Node, ctx: BindContext) -> NodeBinding:
    """sgd/adam/adamw/nadam: the state tensors, the count, then the per-step scalars (the
    runtime's table, and where this node's start in it)."""
    n = ctx.numel(node.inputs[0])
    tensors = [Value(v) for v in node.inputs]
    defines: dict[str, int] = {"DECAY": int(node.attrs["weight_decay"] > 0),
                               "L2": int(node.attrs["l2"] > 0)}
    if node.op == "sgd_update":
        momentum = len(node.inputs) > 2
        defines.update(MOMENTUM=int(momentum), NESTEROV=int(node.attrs["nesterov"]))
        if not momentum:
            tensors.append(NULL)
    args = (*tensors, Int(n), UPDATE_SCALARS, SCALARS_AT)
    kernel = KERNEL_OF.get(node.op, node.op)
    return NodeBinding((elementwise_launch("updates.cl", kernel, n, args, ctx.target, defines),))


BINDERS: dict[str, Binder] = {
    "moving_average_update": bind_moving_average_update,
    "sgd_update": bind_optimizer_update,
    "adam_update": bind_optimizer_update,
    "adamw_update": bind_optimizer_update,
    "nadam_update": bind_optimizer_update,
}
