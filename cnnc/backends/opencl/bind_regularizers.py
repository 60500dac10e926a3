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

# One work-group sums the squares: small enough for any OpenCL device's work-group limit.
GROUP = 64


def bind_l2_penalty(node: Node, ctx: BindContext) -> NodeBinding:
    loss, weight = node.inputs
    args = (Value(loss), Value(weight), Value(node.name), Int(ctx.numel(weight)),
            Float(node.attrs["l2"]))
    return NodeBinding((launch("regularize.cl", "l2_penalty", (GROUP,), args,
                               {"GROUP": GROUP}, (GROUP,)),))


BINDERS: dict[str, Binder] = {"l2_penalty": bind_l2_penalty}
