"""The dense layer's few-rows algorithms (registered in algorithms.py before the direct GEMM),
both kernels/gemv.cl, for inference at batch 1 to GEMV_ROWS: gemv, a work-group of G work-items
splitting the reduction of one MR x NR output block, the default at DEFAULT_ROWS rows (in a
plan for chains, whose work-groups are single work-items, the split is over work-items instead:
gemv_parts then gemv_sum); and dense_softmax, a classifier's head (a softmax over few units) in
one launch instead of two, the default wherever it applies."""

from __future__ import annotations

from cnnc.backends.opencl.launches import (
    NULL,
    BindContext,
    Int,
    NodeBinding,
    Value,
    Workspace,
    launch,
)
from cnnc.backends.opencl.primitives import epilogue_act, unfused_softmax
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import FLOAT_BYTES, tuned_tile
from cnnc.backends.opencl.tunable import Gemm, Variant, tile_text
from cnnc.intmath import ceil_div
from cnnc.ir.graph import Node

NAME = "gemv"
GEMV_ROWS = 8  # rows (batch x pixels) up to which the tuner may choose this algorithm
# Rows up to which it is the default. Measured on pocl (AMD EPYC Zen 4), the seed model's dense
# 2304 -> 128: at 1 row 23-43 us against matmul's 67-77; at 2, 4 and 8 rows slower than matmul.
DEFAULT_ROWS = 1
MAX_GROUP = 64  # work-items sharing a block: beyond it the halving steps outweigh the parts
MIN_PART = 32  # rows of b each work-item sums at least: fewer, and the reduction dominates

HEAD = "dense_softmax"
# Multiply-adds per row up to which a softmax head runs as one work-group per row block (the
# example specs' heads have 640-2,560). Measured on pocl (2-core AMD EPYC Zen 3, under load 3,
# 10 units, one row, back to back): 84 inputs 3.9 us against gemv + softmax's 5.2 + 3.8; 1,600
# inputs 5.8 against 12.1 + 3.1; 3,200 inputs 10.9 against 28.8 + 5.2.
HEAD_MAX_MACS = 32768
# Accumulator vectors a head's one work-item holds in a chain (the MR x NV block of
# registers; 10 units are 5 float2, 100 are 25 float4 and stay a gemv and a softmax).
SERIAL_HEAD_VECTORS = 16


def applies(node: Node, ctx: BindContext) -> bool:
    """Few rows: matmul's grid would be a handful of work-items each taking the whole K."""
    rows, _ = ctx.rows_cols(node.inputs[0])
    return rows <= GEMV_ROWS


def wins_by_rule(node: Node, ctx: BindContext) -> bool:
    """The default: one row (batch-1 inference of a classifier's head)."""
    rows, _ = ctx.rows_cols(node.inputs[0])
    return rows <= DEFAULT_ROWS


def gemv_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The launch as a GEMM for the tuner's register blocks (no split, no local tiles: the
    group's split of the reduction is this algorithm's own)."""
    rows, k = ctx.rows_cols(node.inputs[0])
    return Gemm(node.attrs["units"], rows, k, split=False, local=False)


def group_size(k: int, block_floats: int, target: Target) -> int:
    """Work-items per block: the largest power of two within the device's work-group size and
    local memory (their partial blocks) and MAX_GROUP that leaves each MIN_PART rows of K."""
    limits = target.limits
    cap = min(limits.max_group, limits.max_item_sizes[0], MAX_GROUP)
    g = 1
    while (2 * g <= cap and k // (2 * g) >= MIN_PART
           and 2 * g * block_floats * FLOAT_BYTES <= limits.local_memory):
        g *= 2
    return g


def parts_tile(units: int, rows: int, k: int, target: Target) -> dict[str, int]:
    """gemv_parts' block and parts (a chain's gemv): the widest vectors that divide the
    columns, as many of them as the registers hold beside their row of b (a part then streams
    whole rows of b where the columns fit), and a part per compute unit (fewer where there are
    several blocks), each of MIN_PART rows of K or more.

    Measured in fashion-plus's batch-1 chain (dense 1152 -> 256, 1.2 MB of weights) on the
    2-core Intel Xeon: gemv's 8 single-work-item blocks of 32 columns 18 us; gemv_parts with
    256 columns in 2, 4, 8, 16 parts 9.1, 10.9, 11.2, 13.5 us, and 64 or 128 columns in 8
    parts 11.8 and 12.5 (gemv_sum then ~1 us)."""
    vw = next(v for v in (16, 8, 4, 2, 1) if v <= target.max_vector and units % v == 0)
    mr = min(rows, 4)
    most = max(1, target.vector_registers // (mr + 1))
    nv = max(n for n in range(1, min(most, units // vw) + 1) if units % (vw * n) == 0)
    blocks = units // (vw * nv) * ceil_div(rows, mr)
    parts = max(1, min(ceil_div(target.compute_units, blocks), k // MIN_PART))
    return {"MR": mr, "VW": vw, "NV": nv, "P": parts}


def bind_dense_parts(node: Node, ctx: BindContext) -> NodeBinding:
    """A chain's gemv (ctx.serial): gemv_parts, then gemv_sum (gemv.cl)."""
    x = node.inputs[0]
    rows, k = ctx.rows_cols(x)
    units = node.attrs["units"]
    tile = parts_tile(units, rows, k, ctx.target)
    nr = tile["VW"] * tile["NV"]
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    out, after, work = unfused_softmax(node, ctx, workspace=1)
    parts = Workspace(0)
    main = launch("gemv.cl", "gemv_parts", (units // nr, tile["P"], ceil_div(rows, tile["MR"])),
                  (Value(x), Value(node.params[0]), parts, Int(rows)),
                  {"K": k, "N": units, **tile}, (1, 1, 1))
    finish = launch("gemv.cl", "gemv_sum", (units // tile["VW"], rows),
                    (parts, bias, out, Int(rows)),
                    {"N": units, "VW": tile["VW"], "P": tile["P"],
                     "HAS_BIAS": int(bias != NULL), **epilogue_act(node)}, (1, 1))
    return NodeBinding((main, finish, *after), workspaces=(tile["P"] * rows * units, *work))


def bind_dense_gemv(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    rows, k = ctx.rows_cols(x)
    units = node.attrs["units"]
    if ctx.serial:
        return bind_dense_parts(node, ctx)
    variant = ctx.variant(node)
    tile = tuned_tile(units, ctx.target, variant)
    tile["MR"] = min(tile["MR"], rows)  # no block of rows past the end
    nr = tile["VW"] * tile["NV"]
    g = 1 if ctx.serial else group_size(k, tile["MR"] * nr, ctx.target)
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    out, after, work = unfused_softmax(node, ctx, workspace=0)
    defines = {"K": k, "N": units, **tile, "G": g, "HAS_BIAS": int(bias != NULL),
               **epilogue_act(node)}
    grid = (units // nr * g, ceil_div(rows, tile["MR"]))
    args = (Value(x), Value(node.params[0]), bias, out, Int(rows))
    main = launch("gemv.cl", "gemv", grid, args, defines, (g, 1))
    return NodeBinding((main, *after), workspaces=work)


def describe(variant: Variant) -> str:
    return f"gemv {tile_text(variant)}"


def head_applies(node: Node, ctx: BindContext) -> bool:
    """A softmax over few units on few rows: one work-group holds a row block's every column
    (a work-item per NR of them, the logits in local memory), so the softmax needs no launch
    of its own."""
    rows, k = ctx.rows_cols(node.inputs[0])
    units = node.attrs["units"]
    limits = ctx.target.limits
    if ctx.serial and serial_head_tile(units) is None:
        return False
    return (node.attrs["activation"] == "softmax" and rows <= GEMV_ROWS
            and units * k <= HEAD_MAX_MACS
            and units <= min(limits.max_group, limits.max_item_sizes[0])
            and GEMV_ROWS * units * FLOAT_BYTES <= limits.local_memory)


def serial_head_tile(units: int) -> dict[str, int] | None:
    """The columns of one work-item that spans all `units` (a head in a chain): the widest
    vector that divides them in at most SERIAL_HEAD_VECTORS vectors; None if none does."""
    for vw in (16, 8, 4, 2, 1):
        if units % vw == 0 and units // vw <= SERIAL_HEAD_VECTORS:
            return {"VW": vw, "NV": units // vw}
    return None


def head_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    rows, k = ctx.rows_cols(node.inputs[0])
    return Gemm(node.attrs["units"], rows, k, split=False, local=False)


def bind_dense_softmax(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    rows, k = ctx.rows_cols(x)
    units = node.attrs["units"]
    tile = tuned_tile(units, ctx.target, ctx.variant(node))
    tile["MR"] = min(tile["MR"], rows, GEMV_ROWS)  # no block of rows past the end
    if ctx.serial:
        tile.update(serial_head_tile(units) or {})
    items = units // (tile["VW"] * tile["NV"])  # one work-group spans the columns
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    defines = {"DENSE_SOFTMAX": 1, "K": k, "N": units, **tile, "HAS_BIAS": int(bias != NULL)}
    grid = (items, ceil_div(rows, tile["MR"]))
    args = (Value(x), Value(node.params[0]), bias, Value(node.name), Int(rows))
    return NodeBinding((launch("gemv.cl", HEAD, grid, args, defines, (items, 1)),))


def describe_head(variant: Variant) -> str:
    return f"dense+softmax {tile_text(variant)}"
