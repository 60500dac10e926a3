"""conv2d's algorithm for few input channels (registered in algorithms.py): conv2d_rows.cl, a
direct convolution whose work-items each take MR neighbouring pixels of one output row by
VW * NV filters, reading the input where it lies (no im2col copy), the folded batch norm's bias,
a residual and the activation in its epilogue: one launch for a network's stem, where im2col +
matmul take two and the implicit GEMM spends more on each tap's bookkeeping than on its few
multiplications."""

from __future__ import annotations

from typing import Any

from cnnc.backends.opencl.bind_depthwise_direct import (
    ROWS_KEYS,
    bind_rows_kernel,
    row_block,
)
from cnnc.backends.opencl.launches import BindContext, NodeBinding
from cnnc.backends.opencl.primitives import conv_geometry
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import register_tile, tuned_tile
from cnnc.backends.opencl.tunable import Gemm, Variant, tile_text
from cnnc.errors import InternalError
from cnnc.ir.conv_maxpool import read_pooled_in_store
from cnnc.ir.graph import Node

NAME = "conv_rows"

# Up to this many input channels the row kernel applies (and is the default). Measured alone
# against the implicit GEMM and im2col + matmul at batch 256 on a 28x28 input (pocl, 2-core Zen
# 3, load 1.2-1.9, 3x3 filters, 16 at stride 2 and 32 at stride 1): 2 channels 1.6-1.9x faster
# than the faster of the two, 4 channels 0.9-1.2x, 6 1.1x, 8 0.9-1.1x, 12 0.8x: past a few
# channels the implicit GEMM's loop over each tap's channels amortises its bookkeeping.
ROWS_MAX_CHANNELS = 4
# Up to this many where a 2x2 pooling reads the map in its store (conv2d_maxpool,
# conv2d_avgpool): the row kernel pools as it stores, the other algorithms but Winograd in a
# launch of their own after writing the whole map. LeNet-5's second convolution (6 channels,
# 10x10, pooled to 5x5) at batch 1: the pass 1.10x as fast after a 0.1 s pause and 1.11x back to
# back as with the implicit GEMM and pool.cl (pocl, Zen 3, load 4.4).
ROWS_POOLED_MAX_CHANNELS = 8

# "px": filters per work-item of the pixel-vector form (conv2d_rows.cl -D PX; 0: filter
# vectors), its vectors' lanes VW neighbouring pixels of a row.
KEYS = {**ROWS_KEYS, "px": (0, 32)}


def applies(node: Node, ctx: BindContext) -> bool:
    """A convolution of one group with few channels (not a transposed one's explicit window);
    a few more where a pooling reads its map in its store."""
    c = ctx.shape(node.inputs[0])[-1]
    if node.attrs["groups"] != 1 or node.attrs.get("window") is not None:
        return False
    return c <= ROWS_MAX_CHANNELS or (c <= ROWS_POOLED_MAX_CHANNELS
                                      and read_pooled_in_store(ctx.graph, node.name))


def _geometry(node: Node, ctx: BindContext) -> dict[str, int]:
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    return {k: v for k, v in geo.items() if k not in ("CG", "FG")}


def rows_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The launch as the tuner sees it: rows the output pixels, columns the filters, each a
    reduction over the KH * KW * C window (no local tiles, no split)."""
    geo = _geometry(node, ctx)
    rows = ctx.batch * geo["OH"] * geo["OW"]
    return Gemm(geo["F"], rows, geo["KH"] * geo["KW"] * geo["C"], split=False, local=False)


# The most pixels a work-item takes along a row (a 14-wide stem output in one block).
MAX_ROW_BLOCK = 16


def rows_tile(cols: int, target: Target) -> dict[str, int]:
    """The default block for `cols` filters: on a CPU, the most outputs per work-item (pixels
    times filters) whose accumulators leave two of the vector registers free (one for the
    broadcast input, the weights being read by the FMAs from the L1 cache), in one vector of
    filters up to two registers wide, the widest of equals. A CPU driver pays per work-item:
    measured on pocl (2-core Zen 3, AVX2), shufflenet_mini's stem (28x28x1 -> 14x14x24)
    ran 2.0x faster in whole 14-pixel rows than in 4-pixel blocks of 24 filters, and 2.9x
    faster than im2col + matmul. The binder cuts each row evenly (row_block). GPUs:
    register_tile's."""
    if target.kind != "cpu":
        return register_tile(cols, target)
    best: dict[str, int] = {}
    for vw in (16, 8, 4, 2, 1):
        if vw > 2 * target.max_vector or cols % vw:
            continue
        per_vector = -(-vw // target.max_vector)
        mr = min(MAX_ROW_BLOCK, max(1, (target.vector_registers - 2) // per_vector))
        if not best or mr * vw > best["MR"] * best["VW"]:
            best = {"MR": mr, "VW": vw, "NV": 1}
    return best


def _tile(geo: dict[str, int], ctx: BindContext, variant: Variant) -> dict[str, int]:
    if variant.get("px"):
        px, vw = int(variant["px"]), int(variant["VW"])
        if geo["F"] % px or vw not in (2, 4, 8, 16):
            raise InternalError(f"pixel-vector variant {dict(variant)} does not fit "
                                f"{geo['F']} filters")
        return {"MR": row_block(geo["OW"], vw), "VW": vw, "NV": 1, "PX": px}
    tile = tuned_tile(geo["F"], ctx.target, variant, base=rows_tile)
    return {**tile, "MR": row_block(geo["OW"], tile["MR"])}


def bind_conv2d_rows(node: Node, ctx: BindContext) -> NodeBinding:
    """conv2d (and a folded, residual or gated one's layer) as conv2d_rows.cl's kernel."""
    geo = _geometry(node, ctx)
    tile = _tile(geo, ctx, ctx.variant(node))
    return bind_rows_kernel(node, ctx, geo, tile, geo["F"], "conv2d_rows.cl", "conv2d_rows")


def pixel_variants(filters: int, geo: dict[str, int], target: Target) -> list[dict[str, Any]]:
    """The pixel-vector form (conv2d_rows.cl -D PX) where the filters fill less than the
    widest vector (LeNet-5's 6): a vector of the row's pixels, as wide as the device's widest
    and no wider than the row needs (two lanes at least: a pooling's window pair), times the
    most filters whose accumulators for two rows (a pooled work-item's) leave two registers
    free, and half as many (twice the work-items). CPU only, and only where a vector's windows
    span at most two vectors, so that each tap's pixels are one shuffle: gathered lane by lane,
    shufflenet_mini's stride-2 stem (28x28x1 -> 14x14x24) ran 0.75x its float8 filter vectors
    alone (pocl, 2-core Intel Xeon AVX-512, load 4)."""
    if target.kind != "cpu" or filters % target.max_vector == 0:
        return []
    vw = max(2, min(target.max_vector, 1 << (max(geo["OW"], 2) - 1).bit_length()))
    if (vw - 1) * geo["SW"] + (geo["KW"] - 1) * geo["DW"] + 1 > 2 * vw:
        return []
    most = (target.vector_registers - 2) // 2  # a pooled work-item's two rows' accumulators
    counts = [d for d in range(min(filters, most), 0, -1) if filters % d == 0]
    out = []
    for px in dict.fromkeys([counts[0], *[d for d in counts if d <= counts[0] // 2][:1]]):
        out.append({"algo": NAME, "MR": vw, "VW": vw, "NV": 1, "px": px})
    return out


def rows_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """The pixel-vector form where filters fill less than a vector (pixel_variants: the
    likeliest gain, timed first; LeNet-5's stem 3.3x), the default block with one row block per
    work-group beside ROWS_GROUP's, and a GEMM's block (fewer pixels, more filter vectors),
    first among the tiles worth timing (CPU only: a GPU's groups are the driver's)."""
    if ctx.target.kind != "cpu" or not applies(node, ctx):
        return []
    cols = rows_gemm(node, ctx, {}).cols
    return [*pixel_variants(cols, _geometry(node, ctx), ctx.target),
            {"algo": NAME, **rows_tile(cols, ctx.target), "rows_group": 1},
            {"algo": NAME, **register_tile(cols, ctx.target)}]


def describe(variant: Variant) -> str:
    group = f" rows_group={variant['rows_group']}" if "rows_group" in variant else ""
    if variant.get("px"):
        return f"conv2d rows {variant['VW']} pixels x {variant['px']} filters{group}"
    return f"conv2d rows {tile_text(variant)}{group}"
