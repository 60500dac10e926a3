"""Binder of depthwise_layer_norm (cnnc/ir/depthwise_layer_norm.py): node -> one
kernels/depthwise_layer_norm.cl launch, each work-item a block of one output row's pixels by
all their channels (the depthwise row kernel's grid and work-groups, without the channel
blocks), and the table `BINDERS`."""

from __future__ import annotations

from cnnc.backends.opencl.bind_depthwise_direct import geometry_of, row_block, rows_group
from cnnc.backends.opencl.launches import NULL, BindContext, Float, Int, NodeBinding, Value, launch
from cnnc.backends.opencl.primitives import affine_defines, epilogue_act
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import pixel_row_tile
from cnnc.ir.depthwise_layer_norm import NAME, parts
from cnnc.ir.graph import Node


def block(channels: int, width: int, target: Target) -> dict[str, int]:
    """MR pixels of an output row `width` wide by VW-wide vectors of all `channels`: the
    depthwise row kernel's default block (pixel_row_tile: on a CPU the widest vector up to two
    registers, as many pixels as one vector's accumulators fit), the row then cut into even
    blocks of at most that (row_block). The kernel computes one vector of channels at a time,
    so one vector's accumulators are live, not all NV. Measured on pocl (2-core Zen 3, loaded)
    for convnext_mini's 7x7x32 block at batch 256, minimum of 40 launches: 7 pixels by float16
    0.29 ms, by float8 0.55, 4 by float8 0.40, 2 by float16 0.71, 1 by float16 1.06."""
    tile = pixel_row_tile(channels, target)
    return {"MR": row_block(width, tile["MR"]), "VW": tile["VW"]}


def bind_depthwise_layer_norm(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    dw, ln = parts(node, ctx.shape(x))
    geo = geometry_of(dw.attrs, ctx.shape(x))
    tile = block(geo["C"], geo["OW"], ctx.target)
    blocks = ctx.batch * geo["OH"] * -(-geo["OW"] // tile["MR"])
    group = rows_group(blocks, 1, ctx.target, {})
    grid = (-(-blocks // group[0]) * group[0] if group else blocks,)
    rest = list(ln.params)
    gamma = Value(rest.pop(0)) if ln.attrs["scale"] else NULL
    beta = Value(rest.pop(0)) if ln.attrs["center"] else NULL
    bias = Value(dw.params[1]) if dw.attrs["use_bias"] else NULL
    defines = {**{k: v for k, v in geo.items() if k != "M"}, **tile,
               "HAS_BIAS": int(bias != NULL), **epilogue_act(dw), **affine_defines(gamma, beta)}
    args = (Value(x), Value(dw.params[0]), bias, gamma, beta, Value(node.name), Int(ctx.batch),
            Float(ln.attrs["epsilon"]))
    return NodeBinding((launch("depthwise_layer_norm.cl", "depthwise_layer_norm", grid, args,
                               defines, group[:1] if group else None),))


BINDERS = {NAME: bind_depthwise_layer_norm}
