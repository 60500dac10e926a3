"""Work sizes and tile shapes: how big a block each work-item computes on each kind of device.

The binders (bind.py) ask these functions and the device's `Target` for vector widths, register
tiles, local-memory tiles and how to cut long reductions, so the choices per kind of device sit
in one place. Every work-group shape is chosen within the device's limits (`Target.limits`,
target.py): the work-group size, the sizes per dimension, the local memory. The large counts of
a launch (row blocks, elements) go in dimension 0, whose grid no driver caps; dimensions 1 and 2
stay within target.GRID_GROUPS. Measured figures behind the choices are in benchmarks/README.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cnnc.backends.opencl.target import GRID_GROUPS, INDEX_MAX, Target
from cnnc.errors import InternalError
from cnnc.intmath import ceil_div, round_up

# Local tiles (TX, TY) in order of preference, and reduction steps KT per staged slice: the
# largest that fits the device's work-group size and local memory is used.
LOCAL_TILE_SHAPES = ((16, 16), (16, 8), (8, 8), (8, 4), (4, 4))
LOCAL_TILE_DEPTHS = (16, 8, 4)
FLOAT_BYTES = 4

ELEMENTWISE_GROUP = 64  # 1-D launches are rounded up to this; kernels check their bound


def flat(n: int) -> tuple[int]:
    return (round_up(max(n, 1), ELEMENTWISE_GROUP),)


def elements_per_item(target: Target) -> int:
    """Elements each work-item of an element-wise kernel takes (common.h: FOR_ELEMENTS). A CPU
    driver pays per work-item: on pocl (AMD EPYC Zen 1) a ReLU over 3.2M floats moved 2.7 GB/s
    at one element per work-item, 12-14 GB/s at 8. GPUs: one, for coalesced accesses."""
    return 8 if target.kind == "cpu" else 1


def vector_width(n: int, target: Target) -> int:
    """The widest vector (up to the target's) dividing n: channels moved per work-item."""
    return next(v for v in (16, 8, 4, 2, 1) if v <= target.max_vector and n % v == 0)


def registers_used(tile: Mapping[str, int], target: Target) -> int:
    """SIMD registers an MR x (VW * NV) block holds on a CPU: MR * NV accumulator vectors, NV
    operand vectors and one broadcast, each VW / native-width registers wide."""
    per_vector = ceil_div(tile["VW"], target.max_vector)
    return (tile["MR"] * tile["NV"] + tile["NV"]) * per_vector + 1


def register_tile(cols: int, target: Target) -> dict[str, int]:
    """MR x (VW * NV) outputs per work-item for a GEMM with `cols` columns per group.

    VW is the widest vector dividing cols (so no column block straddles the end or a group);
    two vectors per row when cols allows: ~20% faster on AVX-512 (benchmarks/README.md), else
    three where they divide cols (24 or 72 filters on AVX2: a 4 x 24 block's 12 accumulators
    load 7 operands per 12 FMAs where 8 x 8 loads 9 per 8; a 7x7x72 -> 24 1x1 convolution ran
    1.6-2x faster, pocl on a loaded 2-core Zen 3). On a CPU, MR is the most rows (8, 4, 2 or
    1) whose block fits the vector registers.
    """
    vw = vector_width(cols, target)
    nv = 1
    if target.kind == "cpu":
        nv = next((n for n in (2, 3) if cols % (n * vw) == 0), 1)
    if target.kind != "cpu":
        return {"MR": target.rows_per_item, "VW": vw, "NV": nv}
    for mr in (8, 4, 2, 1):
        tile = {"MR": mr, "VW": vw, "NV": nv}
        if registers_used(tile, target) <= target.vector_registers:
            return tile
    return {"MR": 1, "VW": vw, "NV": 1}


# The most GEMM rows (output pixels) for which exact_row_tile gives a block: an 8x8 map at
# batch 1. On 14x14 maps (196 rows, the 8-row blocks' 4 extra rows 2% of the work) the 7-row
# blocks ran 1.12-1.23x register_tile's time with 64 filters (fashion-best, fashion-plus) and
# 0.92-0.98x with 128 (the seed model).
EXACT_ROWS_MAX = 64


def operand_registers(tile: Mapping[str, int], target: Target) -> int:
    """registers_used without the broadcast: the MR * NV accumulators and NV operand vectors,
    each row's A value taken by the FMAs as a broadcast memory operand. The 7x16x4 block (32 of
    AVX-512's 32 registers by this count) ran fastest on the seed model's 7x7 maps at batch 1."""
    return (tile["MR"] * tile["NV"] + tile["NV"]) * ceil_div(tile["VW"], target.max_vector)


def exact_row_tile(rows: int, cols: int, target: Target) -> dict[str, int] | None:
    """The direct convolution's default block (its rows_tile, algorithms.py) for a GEMM of few
    rows (at most EXACT_ROWS_MAX) that register_tile's MR does not divide: the most rows, from
    its MR down to half of it, that divide `rows` (a 7x7 map's 49 pixels: 7 blocks of 7 rows,
    where 8-row blocks compute 56), at register_tile's vector width with as many vectors as fit
    the registers (operand_registers: up to 4) and divide `cols`; None where there is none, and
    on GPUs (their blocks are local tiles'). Not measured on AVX2 (its 4-row default leaves
    only 3-row blocks). Each launch's time in the forward pass at batch 1, 7x16x4 (7x16x2 for
    32 filters) against register_tile's 8x16x2, the tuned variants otherwise
    (benchmarks/exact_rows.py, 20 interleaved rounds, two runs, pocl 3.1, Intel Xeon AVX-512,
    loads 2-3.3): the seed model's 7x7 convolutions 0.83-0.90x (128 -> 256) and 0.85-0.92x
    (256 -> 256, 4 parts), fashion-best's 7x7 ones 0.78-0.88x, fashion-plus's 0.86-0.89x;
    fashion-best's 1x1 shortcut (9 us) 0.9-1.1x; the few 1-6 us launches it changes in
    mobilenetv3_mini, efficientnet_mini, shufflenet_mini and convnext_mini 0.86-1.0x. The
    tuner, timing each variant alone in turn, did not see the gain under that load (it kept
    8x16x2 in two runs of three): hence the default."""
    if target.kind != "cpu" or rows > EXACT_ROWS_MAX:
        return None
    base = register_tile(cols, target)
    if rows % base["MR"] == 0:
        return None
    mr = next((m for m in range(base["MR"] - 1, base["MR"] // 2, -1) if rows % m == 0), 0)
    for nv in (4, 3, 2, 1) if mr else ():
        tile = {"MR": mr, "VW": base["VW"], "NV": nv}
        fits = operand_registers(tile, target) <= target.vector_registers
        if fits and cols % (base["VW"] * nv) == 0:
            return tile
    return None


def accumulator_registers(tile: Mapping[str, int], target: Target) -> int:
    """SIMD registers the MR * NV accumulator vectors of a block hold on a CPU, and nothing
    else: a kernel whose other operands are each read by a few FMAs takes them as memory
    operands from the L1 cache (depthwise_rows)."""
    return tile["MR"] * tile["NV"] * ceil_div(tile["VW"], target.max_vector)


def pixel_row_tile(cols: int, target: Target) -> dict[str, int]:
    """MR x VW outputs per work-item for a kernel whose rows are neighbouring pixels of one
    image row sharing their inputs, and whose columns share nothing (a depthwise convolution's
    channels). One vector of columns (NV = 1: a second would only add registers, where more
    pixels reuse the loads they share), on a CPU up to two registers wide, and the most pixels
    (8, 4, 2 or 1) whose accumulators fit the vector registers (accumulator_registers). A CPU
    driver pays per work-item: measured on pocl (2-core Zen 3, AVX2) at batch 256, float16
    blocks ran 7x7 and 14x14 depthwise layers 1.0-1.7x faster than float8 ones
    (benchmarks/README.md)."""
    if target.kind != "cpu":
        return {"MR": target.rows_per_item, "VW": vector_width(cols, target), "NV": 1}
    vw = next(v for v in (16, 8, 4, 2, 1) if v <= 2 * target.max_vector and cols % v == 0)
    for mr in (8, 4, 2):
        tile = {"MR": mr, "VW": vw, "NV": 1}
        if accumulator_registers(tile, target) <= target.vector_registers:
            return tile
    return {"MR": 1, "VW": vw, "NV": 1}


# Padded blocks (padded_tiles): rows per block and vectors per row, in the order worth timing.
PADDED_ROWS = (6, 8)
PADDED_VECTORS = (3, 2)


def padded_tiles(cols: int, target: Target) -> list[dict[str, int]]:
    """Register blocks of the widest vectors for a GEMM of `cols` columns that they do not
    divide, its B operand padded with zero columns to the block's multiple (conv2d.cl -D FP,
    the tuner's "pad": 1), where the padding takes at most a quarter of the block's lanes. On
    a CPU only (a GPU's work-item is one lane: nothing to fill). Measured
    (benchmarks/variants.py, pocl 3.1, 2-core Intel Xeon AVX-512, 20 interleaved rounds, load
    3.2-3.5, medians), mobilenetv3_mini at batch 256: its 7x7x24 -> 72 expansion as 6x16x3
    (96 columns) 1.87x, 8x16x2 1.71x, 4x16x3 1.45x, 4x16x5 (80) 1.38x, 8x16x1 (80) 1.08x the
    default 8x8x3; the gated 7x7x72 -> 24 projection as 6x16x2 1.21x, 12x16x2 1.12x, 8x16x2
    and 4x16x2 1.08x, 8x16x1 0.91x: two or three vectors a row, six or eight rows."""
    vw = target.max_vector
    if target.kind != "cpu" or cols % vw == 0:
        return []
    tiles = []
    for nv in PADDED_VECTORS:
        if 3 * round_up(cols, vw * nv) > 4 * cols:
            continue
        for mr in PADDED_ROWS:
            tile = {"MR": mr, "VW": vw, "NV": nv}
            if registers_used(tile, target) <= target.vector_registers:
                tiles.append(tile)
    return tiles


# Keys a tuned variant (BindContext.variants, cnnc/tune/space.py) may set for a GEMM-like launch.
TILE_KEYS = ("MR", "VW", "NV")


def tuned_tile(cols: int, target: Target, variant: Mapping[str, Any],
               base: Callable[[int, Target], dict[str, int]] = register_tile) -> dict[str, int]:
    """base(cols) (register_tile's, unless the algorithm states its own), with the MR, VW and
    NV a tuned variant sets in their place.

    A variant comes from the tuner's space, which only holds blocks whose columns divide cols
    (and which a cache entry was validated against); one that does not is a bug, not a choice.
    """
    tile = base(cols, target)
    tile.update({k: int(variant[k]) for k in TILE_KEYS if k in variant})
    if cols % (tile["VW"] * tile["NV"]) or min(tile.values()) < 1:
        raise InternalError(f"variant tile {tile} does not fit {cols} columns")
    return tile


def tuned_row_groups(
    grid: tuple[int, ...], target: Target, variant: Mapping[str, Any], across: int = 1
) -> tuple[int, ...] | None:
    """row_groups(), unless a tuned variant turns them off ("row_groups": 0: the driver's
    work-group choice)."""
    if not variant.get("row_groups", 1):
        return None
    return row_groups(grid, target, across)


def row_groups(grid: tuple[int, ...], target: Target, across: int = 1) -> tuple[int, ...] | None:
    """Work-groups on a CPU device that span dimension `across` of the grid (1 elsewhere): for a
    GEMM grid (row blocks, column blocks, ...) one row block's column blocks.

    Left to itself, pocl groups small 2-D grids into one work-group that one core then runs
    alone (measured: the fashion model's conv5 at batch 32, grid 196 x 8, ran at half speed).
    Blocks of one row share their A operand: as one work-group they make many groups, and
    neighbours in one group reuse what is in the core's cache. GPUs: the driver's choice.
    """
    if target.kind != "cpu" or len(grid) < 2:
        return None
    group = tuple(n if d == across else 1 for d, n in enumerate(grid))
    if grid[across] > 256 or not target.limits.group_fits(group):
        return None
    return group


def block_grid(rows: int, cols: int, tile: Mapping[str, int]) -> tuple[int, int]:
    """One work-item per MR x NR register block: (row blocks, column blocks)."""
    return ceil_div(rows, tile["MR"]), ceil_div(cols, tile["VW"] * tile["NV"])


def gemm_grid(
    rows: int,
    cols: int,
    tile: Mapping[str, int],
    local: bool,
    target: Target,
    variant: Mapping[str, Any] | None = None,
) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """Global and local sizes of a GEMM-like launch: one work-item per MR x NR block, or with
    local tiling one work-group of TX * TY work-items (in dimension 0, tile.h) per
    (TY*MR) x (TX*NR) tile: (row tiles * TX * TY, column tiles) in groups of (TX * TY, 1)."""
    if not local:
        grid = block_grid(rows, cols, tile)
        return grid, tuned_row_groups(grid, target, variant or {})
    tx, ty = tile["TX"], tile["TY"]
    nr = tile["VW"] * tile["NV"]
    row_tiles, col_tiles = ceil_div(rows, ty * tile["MR"]), ceil_div(cols, tx * nr)
    return (row_tiles * tx * ty, col_tiles), (tx * ty, 1)


def local_tile_bytes(tile: Mapping[str, int]) -> int:
    """Local memory a tiled GEMM stages: KT rows of A's (TY*MR) and B's (TX*NR) columns."""
    nr = tile["VW"] * tile["NV"]
    return FLOAT_BYTES * tile["KT"] * (tile["TY"] * tile["MR"] + tile["TX"] * nr)


def local_tile(tile: Mapping[str, int], target: Target) -> dict[str, int] | None:
    """The largest local tile (TX, TY, KT) for register tile `tile` within the device's
    work-group size (the group is one dimension of TX * TY) and local memory; None if none."""
    if not target.local_tiling:
        return None
    limits = target.limits
    group_cap = min(limits.max_group, limits.max_item_sizes[0])
    for tx, ty in LOCAL_TILE_SHAPES:
        if tx * ty > group_cap:
            continue
        for kt in LOCAL_TILE_DEPTHS:
            shape = {"TX": tx, "TY": ty, "KT": kt}
            if local_tile_bytes({**tile, **shape}) <= limits.local_memory:
                return shape
    return None


def with_local_tile(
    tile: dict[str, int], target: Target, allowed: bool = True
) -> tuple[dict[str, int], bool]:
    shape = local_tile(tile, target) if allowed else None
    if shape is None:
        return tile, False
    return {**tile, "LOCAL_TILE": 1, **shape}, True


def tuned_split(
    items: int, reduction: int, step_bytes: int, target: Target, variant: Mapping[str, Any]
) -> int:
    """split_reduction(), or the parts a tuned variant sets ("split"), within the grid's cap."""
    if "split" in variant:
        return max(1, min(int(variant["split"]), reduction, GRID_GROUPS[2]))
    return split_reduction(items, reduction, step_bytes, target)


def split_reduction(items: int, reduction: int, step_bytes: int, target: Target) -> int:
    """Parts to cut a long reduction into (partial sums are added up after); the parts go in
    launch dimension 2, so there are at most GRID_GROUPS[2] of them.

    A GPU needs enough work-items to fill it. A CPU device runs the work-items of one part
    together, so a part should read no more than fits in a core's cache: measured on the fashion
    model's conv3 kernel gradient at batch 256, 47 GFLOP/s uncut, ~185 GFLOP/s in parts of ~1 MiB.
    step_bytes: bytes read per step of the reduction (one pixel's x and dy).
    """
    if target.kind == "cpu":
        per_part = max(target.cache_bytes // max(step_bytes, 1), 64)
        return min(max(1, ceil_div(reduction, per_part)), GRID_GROUPS[2])
    split = 1
    while items * split < target.min_items and reduction // (split * 2) >= 64:
        split *= 2
    return min(split, GRID_GROUPS[2])


def column_chunks(rows: int, cols: int, target: Target) -> int:
    """Row chunks for a two-stage column sum: enough work-items, and rows enough per chunk. The
    chunks go in launch dimension 1, so there are at most GRID_GROUPS[1] of them."""
    chunks = 1
    while chunks * cols < 16 * target.min_items and rows // (chunks * 2) >= 32:
        chunks *= 2
    return min(chunks, GRID_GROUPS[1])


# ---------------------------------------------------------------- row copies
# Floats a work-item of a CPU's row copy (elementwise.cl: copy_block, pad_rows; resample.cl)
# moves: enough that the per-work-item cost of a CPU driver vanishes, few enough for both cores.
# Measured on pocl (AMD EPYC Zen 4): one float a work-item with an integer division per float
# copied 1.6 GB/s.
CPU_RUN_FLOATS = 2048


def run_vector(*lengths: int, target: Target) -> int:
    """The widest vector (up to the target's) dividing every length: a row copy's VW."""
    return next(
        v for v in (16, 8, 4, 2, 1) if v <= target.max_vector and all(n % v == 0 for n in lengths)
    )


def run_grid(
    rows: int, run: int, vw: int, target: Target, unit: int = 1
) -> tuple[int, int, int, int]:
    """How a copy of `rows` rows of `run` units of `unit` floats is cut (elementwise.cl's
    copy_block: floats; resample.cl: pixels of c floats): the (rows per work-item, units per
    chunk of a row, chunks per row, work-items). A CPU's work-item takes about CPU_RUN_FLOATS
    floats, whole rows where they are short; a GPU's one vector (one unit, for units of
    several floats), so that neighbours in dimension 0 touch neighbouring addresses."""
    if unit > 1:
        vw = 1  # units are moved whole; the vectors run inside a unit
    per_item = max(1, CPU_RUN_FLOATS // unit) if target.kind == "cpu" else vw
    chunk = max(vw, min(round_up(run, vw), per_item // vw * vw))
    chunks = ceil_div(run, chunk)
    rows_per = max(1, per_item // (chunk * chunks)) if chunks == 1 else 1
    items = ceil_div(rows, rows_per) * chunks
    if items > INDEX_MAX:
        raise InternalError(f"a row copy of {rows} x {run} floats needs {items} work-items")
    return rows_per, chunk, chunks, items
