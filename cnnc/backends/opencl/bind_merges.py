"""Binders of the broadcasting merges, their gradient ops and reshape (cnnc/ir/merges.py,
reshapes.py) to kernels/merge.cl: node -> launches, and their table `BINDERS`.

Each tensor is seen as (N, D1, D2, D3) and each operand read through its strides, 0 on the axes
it is broadcast along, passed as kernel arguments (the plan checks each fits an int), so one
program per combination serves every shape; the -D options are the combination's name and the
fused activation's (cnnc/ir/activations.py), nothing computed from sizes.
"""

from __future__ import annotations

from math import prod

from cnnc.backends.opencl.launches import (
    NULL,
    Arg,
    BindContext,
    Binder,
    Float,
    Int,
    NodeBinding,
    Value,
    bind_view,
    elementwise_launch,
    launch,
)
from cnnc.backends.opencl.primitives import epilogue_act, global_pool_defines
from cnnc.backends.opencl.tiling import flat, vector_width
from cnnc.errors import DeviceError
from cnnc.ir.activations import parameters
from cnnc.ir.graph import Node
from cnnc.ir.merges import FUSED_MERGE
from cnnc.ir.ops import layer_of

RANK = 4  # (N, D1, D2, D3)

# The binary combination each merge folds its inputs with (merge.cl's MERGE_<name>).
COMBINATION = {"add": "ADD", "average": "ADD", "subtract": "SUB", "multiply": "MUL",
               "maximum": "MAX", "minimum": "MIN"}
GRAD_WEIGHT = {"unbroadcast": "SUM", "multiply_grad": "MUL", "maximum_grad": "MAX",
               "minimum_grad": "MIN"}


def as_rank4(node: Node, shape: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` as (N, D1, D2, D3): size-1 axes after the batch axis, as Keras broadcasts."""
    if len(shape) > RANK:
        raise DeviceError(
            f"node '{node.name}' ({node.op}) merges rank-{len(shape)} tensors of shape "
            f"{shape}; merge.cl's kernels take at most three axes after the batch axis",
            hint="reshape the inputs to (H, W, C) or fewer axes",
        )
    return (shape[0], *(1,) * (RANK - len(shape)), *shape[1:])


def strides(node: Node, shape: tuple[int, ...]) -> tuple[Int, ...]:
    """An operand's element strides over (N, D1, D2, D3); 0 along its size-1 axes, which is
    where it is broadcast (reading index 0 there either way)."""
    dims = as_rank4(node, shape)
    out, step = [], 1
    for d in reversed(dims):
        out.append(0 if d == 1 else step)
        step *= d
    return tuple(Int(s) for s in reversed(out))


def channel_gate(node: Node, ctx: BindContext, x: str, gate: str) -> NodeBinding | None:
    """x * gate (then the node's activation) by excite.cl's channel_gate, where x is an NHWC
    map of the node's shape and gate one value per example and channel (a squeeze-excite
    product or its map's gradient); else None."""
    out = ctx.shape(node.name)
    g = ctx.shape(gate)
    if (len(out) != 4 or ctx.shape(x) != out or g[-1] != out[-1] or prod(g[1:]) != out[-1]
            or ("activation" in node.attrs and parameters(node.attrs))):
        return None
    defines = {"CHANNEL_GATE": 1, **global_pool_defines(out, ctx.target), **epilogue_act(node)}
    positions = ctx.numel(node.name) // out[-1]
    args = (Value(x), Value(gate), Value(node.name), Int(ctx.batch))
    return NodeBinding((launch("excite.cl", "channel_gate", flat(positions), args, defines),))


def bind_merge(node: Node, ctx: BindContext) -> NodeBinding:
    """merge(x0, x1), then merge(y, xk) for each later input, in place; the last launch scales
    (average: 1/n) and applies a fused activation. A map times a per-channel gate takes
    `channel_gate`."""
    op = layer_of(node.op)
    if op == "multiply" and len(node.inputs) == 2:
        for x, gate in (node.inputs, node.inputs[::-1]):
            gated = channel_gate(node, ctx, x, gate)
            if gated is not None:
                return gated
    out = ctx.shape(node.name)
    _, d1, d2, d3 = as_rank4(node, out)
    n = ctx.numel(node.name)
    y = Value(node.name)
    ident = strides(node, out)
    last = len(node.inputs) - 1
    launches = []
    for k in range(1, len(node.inputs)):
        a, a_strides = ((Value(node.inputs[0]), strides(node, ctx.shape(node.inputs[0])))
                        if k == 1 else (y, ident))
        b = node.inputs[k]
        scale = 1.0 / len(node.inputs) if op == "average" and k == last else 1.0
        defines = {f"MERGE_{COMBINATION[op]}": 1, **(epilogue_act(node) if k == last else {})}
        args: tuple[Arg, ...] = (a, *a_strides, Value(b), *strides(node, ctx.shape(b)), y,
                                 Int(n), Int(d1), Int(d2), Int(d3), Float(scale))
        launches.append(elementwise_launch("merge.cl", "merge", n, args, ctx.target, defines))
    return NodeBinding(tuple(launches))


def bind_merge_grad(node: Node, ctx: BindContext) -> NodeBinding:
    """The row-wise forms where they apply (a product's gradient with no sum: merge.cl's merge;
    a per-example channel operand's: merge_grad_channels), else one work-item per element of
    the operand's gradient, summing its broadcast positions."""
    fast = _merge_grad_rows(node, ctx)
    if fast is not None:
        return fast
    weight = GRAD_WEIGHT[node.op]
    dy = node.inputs[0]
    _, d1, d2, d3 = as_rank4(node, ctx.shape(dy))
    _, t1, t2, t3 = as_rank4(node, ctx.shape(node.name))
    n = ctx.numel(node.name)
    x: Arg = NULL
    other: Arg = NULL
    other_strides = (Int(0),) * RANK
    if node.op == "multiply_grad":
        other, other_strides = Value(node.inputs[1]), strides(node, ctx.shape(node.inputs[1]))
    elif node.op in ("maximum_grad", "minimum_grad"):
        x = Value(node.inputs[1])
        other, other_strides = Value(node.inputs[2]), strides(node, ctx.shape(node.inputs[2]))
    scale = node.attrs["scale"] if node.op == "unbroadcast" else 1.0
    args = (Value(dy), x, other, *other_strides, Value(node.name), Int(n), Int(t1), Int(t2),
            Int(t3), Int(d1), Int(d2), Int(d3), Float(scale))
    return NodeBinding((elementwise_launch("merge.cl", "merge_grad", n, args, ctx.target,
                                           {f"GRAD_{weight}": 1}),))


def _merge_grad_rows(node: Node, ctx: BindContext) -> NodeBinding | None:
    """merge_grad's common cases without its per-element divisions, or None:
    - multiply_grad of an operand of dy's shape (the map of a squeeze-excite product): dx =
      dy * other with other broadcast, which is merge.cl's merge (MERGE_MUL), stepping along rows;
    - an operand of shape (N, 1, 1, C) or (N, C) summed over dy's positions (the gate, a
      per-channel bias), `other` (if any) of dy's shape: merge_grad_channels, VW channels per
      work-item."""
    dy = node.inputs[0]
    dy_shape, out = ctx.shape(dy), ctx.shape(node.name)
    _, d1, d2, d3 = as_rank4(node, dy_shape)
    _, t1, t2, t3 = as_rank4(node, out)
    n = ctx.numel(node.name)
    if node.op == "multiply_grad" and out == dy_shape:
        other = node.inputs[1]
        gated = channel_gate(node, ctx, dy, other)
        if gated is not None:
            return gated
        args: tuple[Arg, ...] = (Value(dy), *strides(node, dy_shape), Value(other),
                                 *strides(node, ctx.shape(other)), Value(node.name), Int(n),
                                 Int(d1), Int(d2), Int(d3), Float(1.0))
        return NodeBinding((elementwise_launch("merge.cl", "merge", n, args, ctx.target,
                                               {"MERGE_MUL": 1}),))
    others = node.inputs[1:] if node.op == "multiply_grad" else node.inputs[2:]
    if (t1, t2, t3) != (1, 1, d3) or any(
            ctx.shape(o) != dy_shape for o in others):
        return None
    x: Arg = Value(node.inputs[1]) if node.op in ("maximum_grad", "minimum_grad") else NULL
    other: Arg = Value(others[0]) if others else NULL
    vw = vector_width(d3, ctx.target)
    vectors = n // vw
    scale = node.attrs["scale"] if node.op == "unbroadcast" else 1.0
    args = (Value(dy), x, other, Value(node.name), Int(vectors), Int(d1 * d2), Int(d3),
            Float(scale))
    defines = {f"GRAD_{GRAD_WEIGHT[node.op]}": 1, "VW": vw}
    return NodeBinding((launch("merge.cl", "merge_grad_channels", flat(vectors), args,
                               defines),))


BINDERS: dict[str, Binder] = {
    **{op: bind_merge for op in COMBINATION if op != "add"},  # add: bind_layers.bind_add
    **{op: bind_merge_grad for op in GRAD_WEIGHT},
    "reshape": bind_view,
    **{fused: bind_merge for fused in FUSED_MERGE.values()},  # the activation as it stores
}
