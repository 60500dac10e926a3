"""Work sizes and tile shapes: how big a block each work-item computes on each kind of device.

The binders (bind.py) ask these functions and the device's `Target` for vector widths, register
tiles, local-memory tiles and how to cut long reductions, so the choices per kind of device sit
in one place. Measured figures behind them are in benchmarks/README.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cnnc.intmath import ceil_div, round_up


@dataclass(frozen=True)
class Target:
    """What the bindings need to know about the device to choose tile sizes."""

    kind: str = "cpu"  # 'cpu' | 'gpu' | ...
    compute_units: int = 1

    @property
    def max_vector(self) -> int:
        # CPUs: a float16 register block maps onto AVX-512 registers (float8 on AVX2 still
        # compiles to two). GPUs: a work-item is one lane; narrow vectors keep registers free.
        return 16 if self.kind == "cpu" else 4

    @property
    def rows_per_item(self) -> int:
        return 8 if self.kind == "cpu" else 4

    @property
    def min_items(self) -> int:
        """Work-items a reduction-heavy kernel should offer before it is split."""
        return 4 * self.compute_units if self.kind == "cpu" else 64 * self.compute_units

    @property
    def cache_bytes(self) -> int:
        """What one part of a split reduction may read (CPU: about one core's L2)."""
        return 1 << 20

    @property
    def local_tile(self) -> dict[str, int] | None:
        """Local-memory tiling (tile.h) for GEMM-like kernels: GPUs only; on a CPU device the
        copies and barriers cost more than they save (benchmarks/README.md)."""
        return {"TX": 16, "TY": 16, "KT": 16} if self.kind == "gpu" else None


ELEMENTWISE_GROUP = 64  # 1-D launches are rounded up to this; kernels check their bound


def flat(n: int) -> tuple[int]:
    return (round_up(max(n, 1), ELEMENTWISE_GROUP),)


def vector_width(n: int, target: Target) -> int:
    """The widest vector (up to the target's) dividing n: channels moved per work-item."""
    return next(v for v in (16, 8, 4, 2, 1) if v <= target.max_vector and n % v == 0)


def register_tile(cols: int, target: Target) -> dict[str, int]:
    """MR x (VW * NV) outputs per work-item for a GEMM with `cols` columns per group.

    VW is the widest vector dividing cols (so no column block straddles the end or a group);
    two vectors per row when cols allows: ~20% faster on AVX-512 (benchmarks/README.md).
    """
    vw = vector_width(cols, target)
    nv = 2 if cols % (2 * vw) == 0 and target.kind == "cpu" else 1
    return {"MR": target.rows_per_item, "VW": vw, "NV": nv}


def row_groups(grid: tuple[int, ...], target: Target) -> tuple[int, ...] | None:
    """Work-groups of one row of the grid on a CPU device: (grid[0], 1, ...).

    Left to itself, pocl groups small 2-D grids into one work-group that one core then runs
    alone (measured: the fashion model's conv5 at batch 32, grid 8 x 196, ran at half speed).
    Rows of blocks that share their A operand make many groups, and neighbours in one group
    reuse what is in the core's cache. GPUs: the driver's choice.
    """
    if target.kind != "cpu" or len(grid) < 2 or grid[0] > 256:
        return None
    return (grid[0],) + (1,) * (len(grid) - 1)


def block_grid(rows: int, cols: int, tile: Mapping[str, int]) -> tuple[int, int]:
    """One work-item per MR x NR register block: (column blocks, row blocks)."""
    return ceil_div(cols, tile["VW"] * tile["NV"]), ceil_div(rows, tile["MR"])


def gemm_grid(
    rows: int, cols: int, tile: Mapping[str, int], local: bool, target: Target
) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """Global and local sizes of a GEMM-like launch: one work-item per MR x NR block, or with
    local tiling one (TX, TY) work-group per (TY*MR) x (TX*NR) tile."""
    if not local:
        grid = block_grid(rows, cols, tile)
        return grid, row_groups(grid, target)
    tx, ty = tile["TX"], tile["TY"]
    nr = tile["VW"] * tile["NV"]
    return ((ceil_div(cols, tx * nr) * tx, ceil_div(rows, ty * tile["MR"]) * ty), (tx, ty))


def with_local_tile(
    tile: dict[str, int], target: Target, allowed: bool = True
) -> tuple[dict[str, int], bool]:
    if not allowed or target.local_tile is None:
        return tile, False
    return {**tile, "LOCAL_TILE": 1, **target.local_tile}, True


def split_reduction(items: int, reduction: int, step_bytes: int, target: Target) -> int:
    """Parts to cut a long reduction into (partial sums are added up after).

    A GPU needs enough work-items to fill it. A CPU device runs the work-items of one part
    together, so a part should read no more than fits in a core's cache: measured on the fashion
    model's conv3 kernel gradient at batch 256, 47 GFLOP/s uncut, ~185 GFLOP/s in parts of ~1 MiB.
    step_bytes: bytes read per step of the reduction (one pixel's x and dy).
    """
    if target.kind == "cpu":
        per_part = max(target.cache_bytes // max(step_bytes, 1), 64)
        return max(1, ceil_div(reduction, per_part))
    split = 1
    while items * split < target.min_items and reduction // (split * 2) >= 64:
        split *= 2
    return split


def column_chunks(rows: int, cols: int, target: Target) -> int:
    """Row chunks for a two-stage column sum: enough work-items, and rows enough per chunk."""
    chunks = 1
    while chunks * cols < 16 * target.min_items and rows // (chunks * 2) >= 32:
        chunks *= 2
    return chunks
