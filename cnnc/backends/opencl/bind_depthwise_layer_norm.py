"""Binder of depthwise_layer_norm (cnnc/ir/depthwise_layer_norm.py): node -> one
kernels/depthwise_layer_norm.cl launch, each work-item a block of one output row's pixels by
all their channels (the depthwise row kernel's grid and work-groups, without the channel
blocks), and the table `BINDERS`."""

from __future__ import annotations

from cnnc.backends.opencl.bind_depthwise_direct import geometry_of, row_block, rows_group
from cnnc.backends.opencl.launches import NULL, BindContext, Float, Int, NodeBinding, Value, launch
from cnnc.backends.opencl.primitives import affine_defines, epilogue_act
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import accumulator_registers, vector_width
from cnnc.ir.depthwise_layer_norm import NAME, parts
from cnnc.ir.graph import Node


def block(channels: int, width: int, target: Target) -> dict[str, int]:
    """MR pixels of an output row `width` wide by VW-wide vectors of all `channels`: the most
    pixels (8, 4, 2, else 1) whose accumulators fit the vector registers, the row then cut into
    even blocks of at most that (row_block); on a GPU one pixel, few registers a work-item."""
    vw = vector_width(channels, target)
    mr = 1
    if target.kind == "cpu":
        mr = next((m for m in (8, 4, 2) if accumulator_registers(
            {"MR": m, "VW": vw, "NV": channels // vw}, target) <= target.vector_registers), 1)
    return {"MR": row_block(width, mr), "VW": vw}


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
