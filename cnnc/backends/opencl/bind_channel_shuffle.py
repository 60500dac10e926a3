"""Binders of the channel shuffle (cnnc/ir/channel_shuffle.py) and of its fused form with the
concatenation before it (cnnc/ir/concat_shuffle.py): node -> a gather of
kernels/channel_shuffle.cl, and their table `BINDERS`. The shuffle's gradient is a
channel_shuffle node too (the inverse shuffle), bound by the same function."""

from __future__ import annotations

from cnnc.backends.opencl.launches import BindContext, Binder, Int, NodeBinding, Value, launch
from cnnc.backends.opencl.tiling import flat, run_grid, run_vector
from cnnc.ir.graph import Node

# Floats a work-item holds between its loads and its interleaved stores (GROUPS x VW): a few
# registers' worth, far below the private memory that a CPU driver keeps on a stack.
MAX_HELD = 64


def bind_channel_shuffle(node: Node, ctx: BindContext) -> NodeBinding:
    """Whole rows of the last axis a work-item (tiling.run_grid)."""
    rows, cols = ctx.rows_cols(node.name)
    groups = node.attrs["groups"]
    vw = run_vector(cols // groups, target=ctx.target)
    while vw > 1 and groups * vw > MAX_HELD:
        vw //= 2
    rows_per, _, _, items = run_grid(rows, 1, 1, ctx.target, unit=cols)
    args = (Value(node.inputs[0]), Value(node.name), Int(rows), Int(cols), Int(rows_per))
    return NodeBinding((launch("channel_shuffle.cl", "channel_shuffle", flat(items), args,
                               {"GROUPS": groups, "VW": vw}),))


def bind_concat_shuffle(node: Node, ctx: BindContext) -> NodeBinding:
    """One gather from the G inputs straight into the (sliced) shuffled rows, cut like the
    shuffle's (whole output rows a work-item)."""
    rows, cols = ctx.rows_cols(node.name)
    groups, start, stop = (node.attrs[k] for k in ("groups", "start", "stop"))
    j0, j1 = start // groups, stop // groups
    vw = run_vector(j1 - j0, target=ctx.target)
    while vw > 1 and groups * vw > MAX_HELD:
        vw //= 2
    rows_per, _, _, items = run_grid(rows, 1, 1, ctx.target, unit=cols)
    per_input = ctx.shape(node.inputs[0])[-1]
    args = (*(Value(x) for x in node.inputs), Value(node.name), Int(rows), Int(rows_per))
    defines = {"GROUPS": groups, "P": per_input, "J0": j0, "J1": j1, "VW": vw}
    return NodeBinding((launch("channel_shuffle.cl", "concat_shuffle", flat(items), args,
                               defines),))


BINDERS: dict[str, Binder] = {"channel_shuffle": bind_channel_shuffle,
                              "concat_shuffle": bind_concat_shuffle}
