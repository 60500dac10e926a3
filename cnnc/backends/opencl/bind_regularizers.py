"""Binder of the regularizer op (cnnc/ir/regularizers.py) and its table `BINDERS`."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    BindContext,
    Binder,
    Float,
    Int,
    NodeBinding,
    Value,
    launch,
)
from cnnc.ir.graph import Node

# One work-group sums the squares: at most this many work-items, halved to the device's limits.
GROUP = 64


def bind_l2_penalty(node: Node, ctx: BindContext) -> NodeBinding:
    loss, weight = node.inputs
    limits = ctx.target.limits
    group = GROUP
    while group > 1 and not limits.group_fits((group,)):
        group //= 2
    args = (Value(loss), Value(weight), Value(node.name), Int(ctx.numel(weight)),
            Float(node.attrs["l2"]))
    return NodeBinding((launch("regularize.cl", "l2_penalty", (group,), args,
                               {"GROUP": group}, (group,)),))


BINDERS: dict[str, Binder] = {"l2_penalty": bind_l2_penalty}
