"""Binders of global max pooling and its gradient (cnnc/ir/global_maxpool.py): node ->
launches of kernels/global_maxpool.cl, and their table `BINDERS`, keyed by op name."""

from __future__ import annotations

from cnnc.backends.opencl.launches import BindContext, Binder, Int, NodeBinding, Value, launch
from cnnc.backends.opencl.tiling import flat
from cnnc.ir.graph import Node


def _bind(node: Node, ctx: BindContext, inputs: tuple[str, ...]) -> NodeBinding:
    """One work-item per (image, channel) of x, the node's first input."""
    _, h, w, c = ctx.shape(node.inputs[0])
    args = (*(Value(v) for v in inputs), Value(node.name), Int(ctx.batch), Int(h * w), Int(c))
    return NodeBinding((launch("global_maxpool.cl", node.op, flat(ctx.batch * c), args),))


BINDERS: dict[str, Binder] = {
    "global_maxpool2d": lambda node, ctx: _bind(node, ctx, node.inputs),
    "global_maxpool2d_grad": lambda node, ctx: _bind(node, ctx, node.inputs),  # (x, dy)
}
