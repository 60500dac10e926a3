"""conv2d_grad_kernel's algorithm for few input channels (registered in algorithms.py):
conv2d_grad_rows.cl, a direct kernel gradient whose work-items each own MR neighbouring taps of
one kernel row by VW * NV filters and walk a part of the batch's output rows, the input row
copied once per output row into a zero-padded private row (no bounds check per tap and pixel),
the parts added up by reduce.cl.

Why (the seed model's stem, 7x7 on 28x28x1 into 64 filters, batch 128; pocl, 2-core Zen 3):
im2col + matmul_tn took 12.3 ms (25% of the device's FMA peak), the implicit GEMM no less: each
checks every tap's bounds per pixel (or copies the 49 taps of every pixel out) for one
multiplication per filter vector. This kernel, the node alone at batch 128, 15 interleaved
rounds on a loaded machine (load 3.5-3.7, so the times are ~2.5x an idle machine's; the ratios
count): im2col + matmul_tn 32.0 ms (min) / 35.8 ms (median); 7 taps x 16 filters (the default)
14.6 / 17.7 ms, 2.0-2.2x; the taps as vectors by 16 filters 17.0 / 21.4; the default with a
work-group's rows taken 4 at a time together 16.1 / 19.0 (both the tuner's variants).
Its accumulators (14 vectors) leave the compiler too few registers for the input window it
slides along the row: pocl's code spills a few of them per pixel (objdump of the cached
kernel); 7 taps x 8 filters, without spills, ran slower still (its dy loads per FMA double).
"""

from __future__ import annotations

from typing import Any

from cnnc.backends.opencl.launches import BindContext, Int, NodeBinding, Value, Workspace, launch
from cnnc.backends.opencl.primitives import conv_geometry, with_parts_summed
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import register_tile, tuned_split, tuned_tile
from cnnc.backends.opencl.tunable import Gemm, Variant, tile_text
from cnnc.errors import InternalError
from cnnc.ir.graph import Node

NAME = "grad_rows"

# Up to this many input channels the row kernel applies (a stem's; the forward pass's rule,
# bind_conv_rows.ROWS_MAX_CHANNELS: past a few channels the implicit GEMM's per-tap checks are
# shared by the channels they cover).
ROWS_MAX_CHANNELS = 4

# sync_rows: output rows a work-group's work-items take together (0: each its whole part)
KEYS = {"sync_rows": (0, 64), "tap_vector": (0, 1)}
SYNC_ROWS_FORM = 4

# The most taps a work-item takes along a kernel row (a 7x7 stem's row in one block).
MAX_TAPS = 8


def applies(node: Node, ctx: BindContext) -> bool:
    """A kernel gradient of one group with few input channels (not a transposed one's explicit
    window: conv2d_transpose_grad_kernel binds as its own op)."""
    c = ctx.shape(node.inputs[0])[-1]
    return (node.attrs["groups"] == 1 and c <= ROWS_MAX_CHANNELS
            and node.attrs.get("window") is None)


def _geometry(node: Node, ctx: BindContext) -> dict[str, int]:
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    return {k: v for k, v in geo.items() if k not in ("CG", "FG")}


def grad_rows_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The launch as the tuner sees it: rows the KH * KW * C taps, columns the filters, the
    reduction over the batch's output pixels, cut into parts. A step (one output pixel) reads
    its dy and, per part, about one input pixel per stride step (the private row's copy)."""
    geo = _geometry(node, ctx)
    pixels = ctx.batch * geo["OH"] * geo["OW"]
    step = 4 * (geo["SH"] * geo["SW"] * geo["C"] + geo["F"])
    return Gemm(geo["F"], geo["KH"] * geo["KW"] * geo["C"], pixels, split=True, local=False,
                step_bytes=step)


def grad_rows_tile(cols: int, target: Target) -> dict[str, int]:
    """The default block for `cols` filters: a whole kernel row of taps (up to MAX_TAPS) by
    register_tile's filters on a CPU, whose accumulators then fill the registers as a GEMM's
    do (MR taps where a GEMM has MR rows); a GPU's register_tile."""
    tile = register_tile(cols, target)
    if target.kind == "cpu":
        tile["MR"] = MAX_TAPS
    return tile


def tap_vector_applies(geo: dict[str, int]) -> bool:
    """The taps as vectors read neighbouring input floats: stride 1 along rows, no dilation."""
    return geo["SW"] == 1 and geo["SH"] == 1 and geo["DW"] == 1 and geo["DH"] == 1


def _tap_vector_tile(node: Node, geo: dict[str, int], variant: Variant) -> dict[str, int]:
    """MR filters per work-item by the kernel row's taps in vectors of VW (NV 1)."""
    tile = {"MR": int(variant.get("MR", 8)), "VW": int(variant.get("VW", 8)), "NV": 1}
    if not tap_vector_applies(geo) or geo["F"] % tile["MR"]:
        raise InternalError(f"node '{node.name}': tap vectors {tile} do not fit {geo}")
    return tile


def _split(node: Node, ctx: BindContext, items: int, variant: Variant) -> int:
    gemm = grad_rows_gemm(node, ctx, variant)
    rows = ctx.batch * _geometry(node, ctx)["OH"]
    return max(1, min(rows, tuned_split(items, gemm.reduction, gemm.step_bytes, ctx.target,
                                        variant)))


def bind_conv2d_grad_kernel_rows(node: Node, ctx: BindContext) -> NodeBinding:
    """conv2d_grad_kernel as conv2d_grad_rows.cl's kernel and, with several parts, their sum."""
    x, dy = node.inputs
    out = Value(node.name)
    geo = _geometry(node, ctx)
    variant = ctx.variant(node)
    if variant.get("tap_vector"):
        tile = _tap_vector_tile(node, geo, variant)
        tap_blocks, filter_blocks = geo["KH"], geo["F"] // tile["MR"]
    else:
        tile = tuned_tile(geo["F"], ctx.target, variant, base=grad_rows_tile)
        taps = min(tile["MR"], geo["KW"])
        tap_blocks = geo["KH"] * geo["C"] * -(-geo["KW"] // taps)
        filter_blocks = geo["F"] // (tile["VW"] * tile["NV"])
    split = _split(node, ctx, tap_blocks * filter_blocks, variant)
    parts = Workspace(0)
    grid = (tap_blocks, filter_blocks, split)
    # One part's work-items in a work-group on a CPU: they run one after the other on one core,
    # all but the first reading the part's dy from its cache.
    # (row_groups 0: the driver's groups instead, a variant the tuner times.)
    group = ((tap_blocks, filter_blocks, 1)
             if ctx.target.kind == "cpu" and variant.get("row_groups", 1)
             and ctx.target.limits.group_fits((tap_blocks, filter_blocks, 1)) else None)
    args = (Value(x), Value(dy), out if split == 1 else parts, Int(ctx.batch))
    sync = int(variant.get("sync_rows", 0)) if group else 0
    main = launch("conv2d_grad_rows.cl", "conv2d_grad_kernel_rows", grid, args,
                  {**geo, **tile, "SYNC_ROWS": sync,
                   "TAP_VECTOR": int(bool(variant.get("tap_vector")))}, group)
    return with_parts_summed(main, parts, out, geo["KH"] * geo["KW"] * geo["C"] * geo["F"],
                             ctx.target)


def default_where(node: Node, ctx: BindContext) -> bool:
    """The default on a CPU (the module's figures); a GPU's work-items are too few (KH * C tap
    blocks by the filter blocks, per part) for it to be more than a variant there."""
    return ctx.target.kind == "cpu"


def grad_rows_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """On a CPU where it applies, beside the register blocks and parts the tuner gives every
    GEMM: the default block with a work-group's rows taken SYNC_ROWS_FORM at a time together,
    and with stride 1 and no dilation the taps in vectors by 16 or 8 filters (those that
    divide the filters)."""
    if ctx.target.kind != "cpu" or not applies(node, ctx):
        return []
    geo = _geometry(node, ctx)
    out: list[dict[str, Any]] = []
    if tap_vector_applies(geo):
        width = ctx.target.max_vector
        out += [{"algo": NAME, "tap_vector": 1, "MR": m, "VW": width, "NV": 1}
                for m in (16, 8) if geo["F"] % m == 0]
    tile = grad_rows_tile(geo["F"], ctx.target)
    out.append({"algo": NAME, **tile, "sync_rows": SYNC_ROWS_FORM})
    return out


def describe(variant: Variant) -> str:
    if variant.get("tap_vector"):
        text = f"grad rows tap vectors {variant.get('MR', '?')} filters x{variant.get('VW', '?')}"
        if "split" in variant:
            text += f" split={variant['split']}"
    else:
        text = f"grad rows {tile_text(variant)}"
    if variant.get("sync_rows"):
        text += f" sync_rows={variant['sync_rows']}"
    return text
