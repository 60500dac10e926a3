"""Binder of the weights' moving-average update (cnnc/ir/ema.py): node -> a launch of
kernels/ema.cl with the op's per-step scalars, and its table `BINDERS`."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    SCALARS_AT,
    UPDATE_SCALARS,
    BindContext,
    Binder,
    Int,
    NodeBinding,
    Value,
    elementwise_launch,
)
from cnnc.ir.graph import Node


def bind_ema_update(node: Node, ctx: BindContext) -> NodeBinding:
    shadow, param = node.inputs
    n = ctx.numel(shadow)
    args = (Value(shadow), Value(param), Int(n), UPDATE_SCALARS, SCALARS_AT)
    return NodeBinding((elementwise_launch("ema.cl", "ema_update", n, args, ctx.target),))


BINDERS: dict[str, Binder] = {"ema_update": bind_ema_update}
