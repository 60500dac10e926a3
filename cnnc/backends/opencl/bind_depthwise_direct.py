"""The depthwise convolution's forward algorithms (registered in algorithms.py): the row kernel
(kernels/depthwise.cl: depthwise_rows), each work-item up to MR neighbouring pixels of one
output row by VW * NV channels, the default; the direct kernel (depthwise_forward), each
work-item MR pixels of the flat pixel index; and the grouped conv2d the layer also is (conv2d's
implicit GEMM, one group per input channel)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cnnc.backends.opencl.bind_layers import bind_conv2d_direct, conv2d_gemm
from cnnc.backends.opencl.launches import NULL, BindContext, Int, NodeBinding, Value, launch
from cnnc.backends.opencl.primitives import conv_geometry, epilogue_act, unfused_softmax
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import (
    accumulator_registers,
    gemm_grid,
    pixel_row_tile,
    register_tile,
    tuned_tile,
)
from cnnc.backends.opencl.tunable import Gemm, Variant, tile_text
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Node
from cnnc.ir.layers import depthwise_as_conv2d

_GEOMETRY = ("H", "W", "C", "KH", "KW", "SH", "SW", "DH", "DW", "OH", "OW", "PT", "PL")


def geometry_of(attrs: Attrs, shape: tuple[int, ...]) -> dict[str, int]:
    """depthwise.cl's -D geometry of a depthwise convolution with `attrs` on an input `shape`."""
    geo = conv_geometry(depthwise_as_conv2d(attrs, shape[-1]), shape)
    return {**{k: geo[k] for k in _GEOMETRY}, "M": attrs["depth_multiplier"]}


def _geometry(node: Node, ctx: BindContext) -> dict[str, int]:
    return geometry_of(node.attrs, ctx.shape(node.inputs[0]))


def depthwise_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The direct kernel's launch seen as a GEMM for the tuner's register blocks: rows the
    output pixels, columns the output channels (each a reduction over the KH * KW taps of its
    own input channel; no local tiles)."""
    geo = _geometry(node, ctx)
    rows = ctx.batch * geo["OH"] * geo["OW"]
    return Gemm(geo["C"] * geo["M"], rows, geo["KH"] * geo["KW"], split=False, local=False)


def bind_depthwise_direct(node: Node, ctx: BindContext) -> NodeBinding:
    """depthwise_conv2d (and a fused one's folded layer) as depthwise.cl's direct kernel."""
    x = node.inputs[0]
    geo = _geometry(node, ctx)
    variant = ctx.variant(node)
    gemm = depthwise_gemm(node, ctx, variant)
    tile = tuned_tile(gemm.cols, ctx.target, variant)
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    out, after, work = unfused_softmax(node, ctx, workspace=0)
    grid, group = gemm_grid(gemm.rows, gemm.cols, tile, False, ctx.target, variant)
    defines = {**geo, **tile, "HAS_BIAS": int(bias != NULL), **epilogue_act(node)}
    args = (Value(x), Value(node.params[0]), bias, out, Int(ctx.batch))
    dw = launch("depthwise.cl", "depthwise_forward", grid, args, defines, group)
    return NodeBinding((dw, *after), workspaces=work)


def row_block(width: int, most: int) -> int:
    """Pixels per block of an output row `width` wide, at most `most`: the row cut into as few
    blocks as that allows, as even as can be (a 7-wide row in one block of 7 rather than 4 and 3,
    where a block's last pixels would be computed and dropped)."""
    return -(-width // -(-width // most))


# Row blocks per work-group on a CPU (dimension 0 of the group; the channel blocks of those
# rows fill dimension 1). pocl runs a work-group on one core, paying a fixed cost per group and
# per work-item. Measured on a 2-core Zen 3 (float8 blocks, benchmarks/README.md): 16 row blocks
# a group ran three of five layer shapes 1.2-1.8x faster than one (7x7x144 5x5, 14x14x96 3x3
# stride 2, 14x14x16 3x3 at batch 256) and two 1.3-1.5x slower (14x14x32 stride 2 multiplier
# 2; 56x56x32 at batch 32); the driver's own groups ran 1.0-1.2x slower than 16. So 16, and
# the tuner also times one ("rows_group": 1); fewer where 16 would leave a compute unit idle
# (a 7x7 map at batch 1 is 7 row blocks).
ROWS_GROUP = 16


def rows_group(blocks: int, channel_blocks: int, target: Target,
                variant: Variant) -> tuple[int, int] | None:
    """The work-group (row blocks, channel blocks) of a depthwise_rows launch: all the channel
    blocks of a few row blocks (they read the same input rows), within the device's limits,
    on a CPU; the driver's choice on a GPU or where a variant turns row groups off."""
    if target.kind != "cpu" or not variant.get("row_groups", 1):
        return None
    rows = min(int(variant.get("rows_group", ROWS_GROUP)),
               -(-blocks // max(target.compute_units, 1)))
    while rows > 1 and not target.limits.group_fits((rows, channel_blocks)):
        rows //= 2
    group = (rows, channel_blocks)
    return group if target.limits.group_fits(group) else None


def _rows_tile(node: Node, ctx: BindContext, variant: Variant) -> dict[str, int]:
    geo = _geometry(node, ctx)
    tile = tuned_tile(geo["C"] * geo["M"], ctx.target, variant, base=pixel_row_tile)
    return {**tile, "MR": row_block(geo["OW"], tile["MR"])}


def depthwise_rows_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The row kernel's launch as the tuner sees it: the same GEMM as the direct kernel's."""
    return depthwise_gemm(node, ctx, variant)


def bind_rows_kernel(node: Node, ctx: BindContext, geo: dict[str, int], tile: dict[str, int],
                     channels: int, file: str, kernel: str) -> NodeBinding:
    """A row kernel's launch (depthwise.cl's depthwise_rows, conv2d_rows.cl's conv2d_rows: the
    same arguments and grid): dim 0 the row blocks of MR pixels, in ROWS_GROUP's work-groups
    where the variant has them, dim 1 the `channels` outputs' blocks of VW * NV."""
    variant = ctx.variant(node)
    blocks = ctx.batch * geo["OH"] * -(-geo["OW"] // tile["MR"])
    channel_blocks = channels // (tile.get("PX") or tile["VW"] * tile["NV"])
    group = rows_group(blocks, channel_blocks, ctx.target, variant)
    grid = (-(-blocks // group[0]) * group[0] if group else blocks, channel_blocks)
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    out, after, work = unfused_softmax(node, ctx, workspace=0)
    defines = {**geo, **tile, "HAS_BIAS": int(bias != NULL), **epilogue_act(node)}
    args = (Value(node.inputs[0]), Value(node.params[0]), bias, out, Int(ctx.batch))
    return NodeBinding((launch(file, kernel, grid, args, defines, group), *after),
                       workspaces=work)


def bind_depthwise_rows(node: Node, ctx: BindContext) -> NodeBinding:
    """depthwise_conv2d (and a fused one's folded layer) as depthwise.cl's row kernel."""
    geo = _geometry(node, ctx)
    tile = _rows_tile(node, ctx, ctx.variant(node))
    return bind_rows_kernel(node, ctx, geo, tile, geo["C"] * geo["M"], "depthwise.cl",
                            "depthwise_rows")


def rows_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """The row kernel with one row block per work-group, beside the default's ROWS_GROUP, and
    with a whole output row per work-item where rows are 9 to 16 pixels wide, in the widest
    vectors whose accumulators fit the registers (fewer, larger work-items: 14-wide rows
    1.2x faster than in two blocks of 7 on pocl, Zen 3). CPU only: a GPU's groups are the
    driver's, and its work-items want few registers."""
    target = ctx.target
    if target.kind != "cpu":
        return []
    cols = depthwise_rows_gemm(node, ctx, {}).cols
    tile = pixel_row_tile(cols, target)
    out = [{"algo": ROWS, **tile, "rows_group": 1}]
    width = _geometry(node, ctx)["OW"]
    if tile["MR"] < width <= 16:
        for vw in (16, 8, 4, 2, 1):
            row = {"MR": width, "VW": vw, "NV": 1}
            if (vw <= 2 * target.max_vector and cols % vw == 0
                    and accumulator_registers(row, target) <= target.vector_registers):
                out.append({"algo": ROWS, **row})
                break
    return out


ROWS_KEYS = {"rows_group": (1, 256)}


def _as_conv2d(node: Node, ctx: BindContext) -> Node:
    attrs = depthwise_as_conv2d(node.attrs, ctx.shape(node.inputs[0])[-1])
    return replace(node, op="conv2d", attrs=attrs)


def bind_depthwise_grouped(node: Node, ctx: BindContext) -> NodeBinding:
    """depthwise_conv2d as the grouped conv2d it is (conv2d.cl's implicit GEMM, or im2col with
    few channels): its (KH, KW, C, M) kernel is that conv2d's (KH, KW, 1, C*M), byte for byte."""
    return bind_conv2d_direct(_as_conv2d(node, ctx), ctx)


def grouped_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """The grouped path with its conv2d's default block (its GEMM has M columns per group)."""
    gemm = conv2d_gemm(_as_conv2d(node, ctx), ctx, {})
    return [{"algo": GROUPED, **register_tile(gemm.cols, ctx.target)}]


def describe_direct(variant: Variant) -> str:
    return f"depthwise {tile_text(variant)}"


def describe_grouped(variant: Variant) -> str:
    return f"grouped conv2d {tile_text(variant)}"


def describe_rows(variant: Variant) -> str:
    group = f" rows_group={variant['rows_group']}" if "rows_group" in variant else ""
    return f"depthwise rows {tile_text(variant)}{group}"


DIRECT, GROUPED, ROWS = "depthwise", "grouped", "rows"
