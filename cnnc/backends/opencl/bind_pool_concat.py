"""Binder of maxpool2d_concat (cnnc/ir/pool_concat.py): node -> launches, and its table
`BINDERS`.

One pool.cl maxpool2d launch with -D PARTS and each part's channels C0.., reading the parts
where they lie (the first as x, the others as the kernel's last arguments): the launch the
pooling alone would make, over the concatenated map's geometry, with the vectors of channels
narrowed to the widest that divides every part (a work-item's channels inside one part).
"""

from __future__ import annotations

from functools import reduce
from math import gcd

from cnnc.backends.opencl.launches import BindContext, Binder, Int, NodeBinding, Value, launch
from cnnc.backends.opencl.primitives import window_defines
from cnnc.backends.opencl.tiling import flat, vector_width
from cnnc.ir.graph import Node
from cnnc.ir.pool_concat import concat_shape


def bind_maxpool2d_concat(node: Node, ctx: BindContext) -> NodeBinding:
    shapes = tuple(ctx.shape(x) for x in node.inputs)
    channels = [s[3] for s in shapes]
    defines = window_defines(node.attrs["pool"], concat_shape(node.attrs, shapes),
                             ctx.shape(node.name), ctx.target)
    defines["VW"] = vector_width(reduce(gcd, channels), ctx.target)
    defines["PARTS"] = len(channels)
    defines.update({f"C{i}": c for i, c in enumerate(channels)})
    grid = flat(ctx.numel(node.name) // defines["VW"])
    first, *rest = node.inputs
    args = (Value(first), Value(node.name), Int(ctx.batch), *(Value(x) for x in rest))
    return NodeBinding((launch("pool.cl", "maxpool2d", grid, args, defines),))


BINDERS: dict[str, Binder] = {"maxpool2d_concat": bind_maxpool2d_concat}
