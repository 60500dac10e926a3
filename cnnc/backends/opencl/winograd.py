"""Winograd F(m x m, 3 x 3) bindings of stride-1 3x3 convolutions (kernels/winograd.cl): conv2d's
forward pass and its input gradient, as kernel variants the tuner may choose for a node.

A variant is the dict {"algo": "winograd", "wino_m": 2 | 4 | 7} in BindContext.variants under the
node's name, optionally with "wino_tile": {"MR": int, "VW": int, "NV": int} (the GEMMs' register
tile; absent = tiling.register_tile's) and "wino_chunk": tiles per chunk of the batch (0 or
absent = the whole batch at once). `winograd_variants` lists those worth timing for a node;
algorithms.py registers the bindings, variants and error factor here as conv2d's and
conv2d_grad_input's "winograd" algorithm. A node
is bound as four launches: the filter transform (once per run of the plan, so once per weight
update in training), then per chunk of the batch's tiles the input transform, T*T batched GEMMs
(tile.h's register blocks, T = m + 2) and the output transform with the bias and activation.

The transform matrices (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
2015) are here as NumPy arrays too: tests/numpy/test_winograd_transforms.py checks them in
float64, and `winograd_error_factor` states how much more float32 error they bring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from math import lcm, prod
from typing import Any

import numpy as np

from cnnc.backends.opencl.launches import (
    NULL,
    Arg,
    BindContext,
    Int,
    Launch,
    NodeBinding,
    Value,
    Workspace,
    launch,
)
from cnnc.backends.opencl.primitives import conv_geometry, epilogue_act, unfused_softmax
from cnnc.backends.opencl.target import INDEX_MAX, Target
from cnnc.backends.opencl.tiling import (
    flat,
    gemm_grid,
    register_tile,
    registers_used,
    row_groups,
    vector_width,
    with_local_tile,
)
from cnnc.errors import InternalError
from cnnc.intmath import ceil_div, round_up
from cnnc.ir.graph import Node

NAME = "winograd"  # the variants' "algo" (algorithms.py registers it under this name)
GROUP_TILES = 16  # winograd.cl's: tiles a transform into a blocked layout takes block by block
WINO_MS = (2, 4, 7)  # output tile sizes m of the kernels (winograd.cl: -D WINO_M)
GRAD_KERNEL_MS = (2, 4)  # those of the kernel gradient's kernels (F(3x3, m x m))


# ---------------------------------------------------------------- transform matrices

# F(7x7, 3x3)'s interpolation points (and infinity): the best of a small random search over
# points with short binary or ternary expansions, by the float32 error of one tile's outputs
# against float64 (N(0, 1) inputs; {0, +-1, +-2, +-1/2, 4} had 9x its largest error). A 9 x 9
# tile covers the 7, 14 and 28 wide maps of the example networks exactly.
WINO7_POINTS = (0, -2, -1, Fraction(-1, 2), Fraction(1, 3), Fraction(2, 3), Fraction(4, 3), 3)


def _poly(roots: Sequence[Fraction]) -> list[Fraction]:
    """The coefficients of prod (x - r), lowest power first."""
    out = [Fraction(1)]
    for r in roots:
        out = [(out[i - 1] if i else 0) - r * (out[i] if i < len(out) else 0)
               for i in range(len(out) + 1)]
    return out


def cook_toom(points: Sequence[Fraction | int], m: int) -> tuple[list[list[Fraction]], ...]:
    """Exact (B^T, G, A^T) of F(m x m, 3 x 3) for m + 1 distinct finite interpolation points and
    infinity (Toom-Cook, as Lavin & Gray's): A^T[i][j] = a_j^i, G[j][k] = a_j^k / prod_l (a_j -
    a_l), B^T's row j the coefficients of prod_(l != j) (x - a_l) (row m + 1: of prod_l (x -
    a_l)); then each B^T row and A^T column scaled to the smallest integers, G divided by
    both. Integers are exact in float32, so the only rounded constants of the kernels are G's,
    which round once per weight (the measured error was the same either way, within noise)."""
    a = [Fraction(p) for p in points]
    n = m + 2
    if len(a) != n - 1 or len(set(a)) != len(a):
        raise ValueError(f"F({m}x{m}, 3x3) needs {n - 1} distinct points, got {points!r}")
    at = [[a[j] ** i for j in range(n - 1)] + [Fraction(int(i == m - 1))] for i in range(m)]
    g = [[a[j] ** k / prod(a[j] - a[l] for l in range(n - 1) if l != j) for k in range(3)]
         for j in range(n - 1)] + [[Fraction(0), Fraction(0), Fraction(1)]]
    bt = [_poly(a[:j] + a[j + 1:]) + [Fraction(0)] for j in range(n - 1)] + [_poly(a)]
    for j in range(n):
        s = Fraction(lcm(*(v.denominator for v in bt[j])))
        t = Fraction(lcm(*(at[i][j].denominator for i in range(m))))
        bt[j] = [v * s for v in bt[j]]
        for i in range(m):
            at[i][j] *= t
        g[j] = [v / (s * t) for v in g[j]]
    return bt, g, at


def transform_matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B^T, G, A^T) of F(m x m, 3 x 3) in float64: y = A^T [(G g G^T) * (B^T d B)] A for a
    (m + 2) x (m + 2) input patch d and a 3 x 3 filter g (correlation, as conv2d computes)."""
    if m == 2:  # points 0, 1, -1, infinity
        bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        g = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        at = [[1, 1, 1, 0], [0, 1, -1, -1]]
    elif m == 4:  # points 0, 1, -1, 2, -2, infinity
        bt = [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ]
        g = [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
        at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    elif m == 7:  # WINO7_POINTS; winograd.cl's sums are scripts/winograd_sums.py's print of these
        bt, g, at = ([[float(v) for v in row] for row in x] for x in cook_toom(WINO7_POINTS, 7))
    else:
        raise ValueError(f"Winograd F({m}x{m}, 3x3) is not implemented (m = 2, 4 or 7)")
    return (np.array(bt, np.float64), np.array(g, np.float64), np.array(at, np.float64))


# How much larger a float32 Winograd convolution's error is than a direct float32 convolution's
# on the same inputs: the ratio of their largest absolute errors against a float64 reference.
# Measured with tests/numpy/test_winograd_transforms.py's `measured_error_factor` (random N(0,1)
# inputs, weights scaled by 1/sqrt(9C), C = 16..256 channels, 20 trials each, float32
# transforms and sums): F(2x2) 2.4-3.6x; F(4x4) 44-87x, an order of magnitude worse, as
# expected: its transforms have entries up to 8 (A^T), 5 (B^T) and 1/24 (G), and each adds
# rounding error by a fixed factor that does not depend on the reduction length. The bounds are
# a little over the worst measured ratio; the reduction-length growth of the error is the same
# as direct convolution's (the GEMM over C is an ordinary float32 sum), so a gate's tolerance
# for the direct kernel times this factor bounds the Winograd kernel's. F(7x7) at WINO7_POINTS
# (the same measure, C = 16..512): 344-613x, about 7.5x F(4x4)'s (entries up to 4096 in A^T,
# 599 in B^T, with G's fractions scaled to match): offered only where its multiplications
# are far fewer (worth_offering), and the tuner's gate holds it to this bound.
_ERROR_FACTORS = {2: 6.0, 4: 128.0, 7: 1024.0}


def winograd_error_factor(m: int) -> float:
    """Bound on how much a float32 F(m x m, 3 x 3) convolution's error exceeds a direct float32
    convolution's on the same inputs (see _ERROR_FACTORS): the tuner's gate scales its
    tolerance by this."""
    if m not in _ERROR_FACTORS:
        raise ValueError(f"Winograd F({m}x{m}, 3x3) is not implemented (m = 2, 4 or 7)")
    return _ERROR_FACTORS[m]


# ---------------------------------------------------------------- when it applies

def applies(node: Node, ctx: BindContext) -> bool:
    """Whether the node is a convolution Winograd can run (winograd_applies)."""
    return winograd_applies(node.attrs)


def winograd_applies(attrs: Mapping[str, Any]) -> bool:
    """Whether a convolution (conv2d attrs, or its gradient's) can run as Winograd F(m, 3x3):
    3x3 kernel, stride 1, dilation 1, groups 1; any padding."""
    return (
        tuple(attrs["kernel_size"]) == (3, 3)
        and tuple(attrs["strides"]) == (1, 1)
        and tuple(attrs["dilation_rate"]) == (1, 1)
        and attrs["groups"] == 1
    )


def _forward_shape(node: Node, ctx: BindContext) -> dict[str, int]:
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    keys = ("H", "W", "C", "OH", "OW", "F", "PT", "PL")
    return {**{k: geo[k] for k in keys}, "FLIP": 0}


def _grad_input_shape(node: Node, ctx: BindContext) -> dict[str, int]:
    geo = conv_geometry(node.attrs, ctx.shape(node.name))
    # dx[ih] = sum_kh dy[ih + PT - kh] w[kh] = sum_j dy[ih - (2 - PT) + j] w[2 - j]
    return {
        "H": geo["OH"], "W": geo["OW"], "C": geo["F"],
        "OH": geo["H"], "OW": geo["W"], "F": geo["C"],
        "PT": geo["KH"] - 1 - geo["PT"], "PL": geo["KW"] - 1 - geo["PL"], "FLIP": 1,
    }


# The geometry of the stride-1 convolution the Winograd kernels compute for a node of each op
# bound here (algorithms.py registers those bindings): input H x W x C, output OH x OW x F,
# padding before PT, PL, and FLIP (the input gradient: the convolution of dy with the kernel
# rotated and its channels swapped).
CONVOLUTION_OF = {"conv2d": _forward_shape, "conv2d_grad_input": _grad_input_shape}
OPS = tuple(CONVOLUTION_OF)  # the ops bound here when a variant asks


def _conv_shape(node: Node, ctx: BindContext) -> dict[str, int]:
    return CONVOLUTION_OF[node.op](node, ctx)


def _tiles(shape: Mapping[str, int], m: int, batch: int) -> tuple[int, int, int]:
    th, tw = ceil_div(shape["OH"], m), ceil_div(shape["OW"], m)
    return th, tw, batch * th * tw


def padded_plane(floats: int) -> int:
    """winograd.cl's PLANE with -D WINO_PAD=1: floats from one point's plane of V or Mt to the
    next (whole 4 KiB pages and a cache line, so the planes start in different cache sets)."""
    return round_up(floats, 1024) + 16


def _workspace_floats(shape: Mapping[str, int], m: int, chunk: int,
                      rows_per_block: int = 1) -> tuple[int, int, int]:
    """Floats of U (transformed filters), V (transformed inputs: a chunk's tiles rounded up to
    whole blocks of `rows_per_block`, winograd.cl's VPACK) and Mt (GEMM outputs), the planes of
    V and Mt padded (padded_plane)."""
    tt = (m + 2) ** 2
    rows = round_up(max(chunk, 1), rows_per_block)
    return (tt * shape["C"] * shape["F"], tt * padded_plane(rows * shape["C"]),
            tt * padded_plane(chunk * shape["F"]))


def gemm_packing(tile: Mapping[str, int], local: bool, input_vw: int,
                 target: Target) -> dict[str, int]:
    """winograd.cl's UPACK, VPACK and VPACK_C for a forward GEMM of register tile `tile`: U in
    panels of the block's NR filters and V in blocks of its MR tiles, so that each operand of
    a work-item is one stream of consecutive floats (measured on a 2-core Zen 3 at batch 256
    and 32: the fashion layers' GEMMs 1.2-1.6x faster, up to the speed of the same loop with
    its operands held in the L1 cache, benchmarks/README.md). GPUs' local tiles (LOCAL_TILE)
    stage the operands in local memory whatever their layout, and a GPU's neighbouring
    work-items read neighbouring floats of the plain layout: plain there."""
    if local or target.kind != "cpu":
        return {"UPACK": 0, "VPACK": 0, "VPACK_C": 0}
    return {"UPACK": tile["VW"] * tile["NV"], "VPACK": tile["MR"], "VPACK_C": input_vw}


def gemm_tiles(cols: int, target: Target) -> list[dict[str, int] | None]:
    """Register tiles for the Winograd GEMMs worth trying, None standing for the default
    (tiling.register_tile): also blocks of 16 columns, with the most rows (up to 8) whose
    accumulators and operands fit the vector registers (tiling.registers_used: 6 on AVX2, 8 on
    AVX-512) and with 4 rows. (The default 8 x 32 fits AVX-512 only; measured on a 2-core Zen 1,
    4 x 16 ran the GEMMs ~1.7x faster, benchmarks/README.md; on a 2-core Zen 3 with packed
    operands, 6 x 16 ran them as fast as 4 x 16 or up to 1.2x faster, and 8 x 16 spilled
    registers and ran 2-3x slower.)"""
    default = register_tile(cols, target)
    out: list[dict[str, int] | None] = [None]
    if cols % 16 == 0 and target.kind == "cpu":
        vw = min(16, target.max_vector)
        nv = 16 // vw
        fits = [mr for mr in range(8, 0, -1)
                if registers_used({"MR": mr, "VW": vw, "NV": nv}, target)
                <= target.vector_registers]
        for mr in dict.fromkeys((fits[0], 4)):
            tile = {"MR": mr, "VW": vw, "NV": nv}
            if tile != default:
                out.append(tile)
    return out


# Private floats a winograd_fused work-item may hold (its tiles' V and one filter block's Mt):
# about an L1 data cache (32 KiB on the x86 cores measured; drivers do not report it), past
# which the fused kernel only moves the round trip through memory from global to private.
FUSED_PRIVATE_FLOATS = 8192
# On a CPU, where the input channels are at most FUSED_WIDE_MAX_CHANNELS, also the most tiles
# per work-item (FUSED_FIRST_TILES or more) within FUSED_WIDE_PRIVATE_FLOATS (96 KiB: a work-group
# of 8 keeps 768 KiB on a pocl thread's stack): the L1 bound above held a 14x14 layer of 32
# channels to F(2x2) x8 and F(4x4) x2, and F(4x4) x8 ran it faster still where the cache behind
# L1 keeps the tiles (pocl, Intel Xeon AVX-512, 48 KiB L1, 2 MiB L2, interleaved medians of
# 50-100 rounds, benchmarks/variants.py, three runs): resnet_mini's 14x14x32->32 residual
# forward at batch 256 1.75-1.77x the direct kernel where F(2x2) x8 ran 1.55-1.63x and F(4x4) x2
# 1.35x; its 28x28x16->16 one F(4x4) x8 1.70-1.85x, x4 1.55-1.82x. On fashion's 14x14x64->128
# F(2x2) x8 ran 1.15x and 0.93x F(2x2) x4's speed in two runs: wider layers keep the L1 bound,
# and so does F(7x7): its kernel with 4 or 8 tiles a work-item took 47-58 s to build (pocl,
# load 4.5; F(4x4) x8 24 s, x4 11 s), a tuning budget's share, for 1.66-1.85x where F(4x4) x8
# ran 1.70-1.77x.
FUSED_WIDE_PRIVATE_FLOATS = 24576
FUSED_WIDE_MAX_CHANNELS = 32
FUSED_WIDE_MAX_M = 4


def fused_filter_block(cols: int, target: Target) -> dict[str, int]:
    """VW and NV of winograd_fused's filter block: the widest vector dividing `cols`, two of
    them where they divide it on a CPU (as tiling.register_tile)."""
    tile = register_tile(cols, target)
    return {"VW": tile["VW"], "NV": tile["NV"]}


def fused_tiles_per_item(shape: Mapping[str, int], m: int, target: Target) -> list[int]:
    """Tiles per work-item worth trying for winograd_fused ([], one count or two): the most
    whose accumulators (tiles x NV vectors) fit the vector registers as a GEMM's register block
    would (tiling.register_tile), else half that, else a quarter and so on down to two, if the
    private arrays stay within FUSED_PRIVATE_FLOATS; on a CPU with few channels, F(2x2) and
    F(4x4), before it the most from FUSED_FIRST_TILES up within FUSED_WIDE_PRIVATE_FLOATS where
    that is more. (Fewer tiles load each U vector for fewer
    tiles: on a Zen 1, 4 tiles ran resnet_mini's layers as fast as 2 or up to 1.5x faster,
    benchmarks/winograd.py. Two tiles give the layers of 32 and 64 channels a one-launch kernel
    too, with no V or Mt round trip through memory; one tile, where only one fits (128
    channels), ran 2x slower than the three launches on a Zen 4: each U vector loaded for one
    FMA.)"""
    fb = fused_filter_block(shape["F"], target)
    most = register_tile(shape["F"], target)["MR"]
    counts = [most, most // 2, *(n for n in (most // 4, most // 8) if n >= 2)]

    def fits(limit: int, least: int) -> list[int]:
        return [nt for nt in counts if nt >= least
                and nt * (m + 2) ** 2 * (shape["C"] + fb["VW"] * fb["NV"]) <= limit][:1]

    out = fits(FUSED_PRIVATE_FLOATS, 1)
    if (target.kind == "cpu" and shape["C"] <= FUSED_WIDE_MAX_CHANNELS
            and m <= FUSED_WIDE_MAX_M):
        wide = fits(FUSED_WIDE_PRIVATE_FLOATS, FUSED_FIRST_TILES)
        out = list(dict.fromkeys(wide + out))  # the larger count first
    return out


# The variant keys of the algorithm, with their ranges (the tuning cache refuses others), and the
# one holding a register tile of its own.
VARIANT_KEYS = {
    "wino_m": (2, 7),
    "wino_chunk": (0, 1 << 30),  # Winograd tiles per chunk of the batch (0: all)
    "wino_fused": (0, 16),  # tiles per work-item of the one-launch kernel (0: not it)
}
TILE_KEYS = ("wino_tile",)


def multiplications_per_output(shape: Mapping[str, int], m: int) -> float:
    """The GEMMs' multiplications (and transformed floats written and read) per real output
    and per channel pair: (m + 2)^2 per tile over the outputs the tiles really hold."""
    th, tw, _ = _tiles(shape, m, 1)
    return (m + 2) ** 2 * th * tw / (shape["OH"] * shape["OW"])


def _pooled_by_reader(node: Node, ctx: BindContext) -> bool:
    """Whether a 2x2 pooling the conv2d_maxpool fusion folds into the convolution's store reads
    the node (the tuner times that convolution alone: tuning_graph's `<name>/pool`)."""
    from cnnc.ir.conv_maxpool import read_pooled_in_store

    return read_pooled_in_store(ctx.graph, node.name)


def worth_offering(node: Node, ctx: BindContext, shape: Mapping[str, int], m: int) -> bool:
    """Whether the tuner should time F(m x m) for the node, to keep tuning time bounded. F(7x7)
    only where its tiles cover the map with fewer multiplications per real output than
    F(4x4)'s (7 and 14 wide maps: 1.65 against 2.94; 28: 1.65 against 2.25; not 9, 10, 15,
    ...), since its 9 x 9 transforms cost more per tile and its error is about 8x F(4x4)'s; and
    not where a fused 2x2 pooling follows and the map takes more than one tile: an odd tile
    cuts pooling windows, so bind_conv_maxpool.py would pool in a launch of its own."""
    if m != 7:
        return True
    if multiplications_per_output(shape, 7) >= multiplications_per_output(shape, 4):
        return False
    th, tw, _ = _tiles(shape, 7, 1)
    return th * tw == 1 or not _pooled_by_reader(node, ctx)


def winograd_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """The Winograd variants admissible for `node` on ctx's device: {"algo": "winograd",
    "wino_m": m} for each m whose workspaces fit the device's largest buffer and the kernels'
    int indices, each also with the other GEMM tiles of `gemm_tiles` ("wino_tile"); [] where
    Winograd does not apply (not a conv2d or its input gradient, or not a stride-1 3x3
    convolution). Where the channels are few, also the fused kernel ("wino_fused": tiles per
    work-item), first: it needs no V or Mt workspace at all. F(7x7) only where
    `worth_offering`."""
    if node.op not in OPS or not winograd_applies(node.attrs):
        return []
    shape = _conv_shape(node, ctx)
    limit = min(ctx.target.limits.max_allocation // 4, INDEX_MAX)
    out: list[dict[str, Any]] = []
    for m in WINO_MS:
        if not worth_offering(node, ctx, shape, m):
            continue
        chunk = _tiles(shape, m, ctx.batch)[2]
        if _workspace_floats(shape, m, chunk)[0] > limit or chunk > limit:
            continue
        for nt in fused_tiles_per_item(shape, m, ctx.target):
            out.append({"algo": NAME, "wino_m": m, "wino_fused": nt})
        if max(_workspace_floats(shape, m, chunk)) > limit:
            continue
        for tile in gemm_tiles(shape["F"], ctx.target):
            v: dict[str, Any] = {"algo": NAME, "wino_m": m}
            out.append(v if tile is None else {**v, "wino_tile": tile})
    return out


# Tiles per work-item from which the one-launch kernel is timed before the three-launch ones.
FUSED_FIRST_TILES = 4


def winograd_space(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """winograd_variants in the order worth timing: first the fused kernel's variants that hold
    FUSED_FIRST_TILES tiles per work-item or more (few channels), then the fewest
    multiplications (the largest m) first, since they change the arithmetic and tiles only how
    fast it runs (F(4x4) ran the fashion 3x3 convolutions 3.6-5.7x faster than the direct
    kernel on a Zen 1; a tile alone, 1.1-2.1x).

    With few channels the transforms' round trip through memory costs as much as the GEMMs:
    on resnet_mini's 28x28x16->16 forward at batch 256 (pocl, Intel Xeon AVX-512, load 6-7,
    interleaved medians of 40 rounds, twice) F(4x4) fused x4 and F(2x2) fused x8 ran 1.26-1.35x
    the direct kernel, the three-launch F(4x4) and F(7x7) 0.69x and 0.55x; at 14x14x32->32
    F(2x2) fused x8 0.94-1.11x, the three-launch ones 0.49-0.65x. Largest m first, the tuner's
    first pass (the default and the next PATIENCE) there timed F(7x7) fused x2 and the
    three-launch F(7x7), and never a fused kernel with more tiles. Fewer tiles per work-item
    load each U vector for fewer FMAs (one tile ran 128 channels 2x slower than three launches
    on a Zen 4), so those keep their place by m."""
    return sorted(winograd_variants(node, ctx),
                  key=lambda v: (v.get("wino_fused", 0) < FUSED_FIRST_TILES, -v["wino_m"]))


def variant_error_factor(variant: Mapping[str, Any]) -> float:
    return float(winograd_error_factor(int(variant["wino_m"])))


def variant_family(variant: Mapping[str, Any]) -> tuple[int, bool]:
    """Its output tile, and whether in one launch (the register tiles and chunks aside)."""
    return int(variant.get("wino_m", 0)), bool(variant.get("wino_fused", 0))


def describe(variant: Mapping[str, Any]) -> str:
    """'winograd m=4 4x16x1 chunk=64', 'winograd m=2 fused x4'."""
    extra = f" m={variant['wino_m']}" if "wino_m" in variant else ""
    tile = variant.get("wino_tile")
    if tile:
        extra += f" {tile.get('MR', '?')}x{tile.get('VW', '?')}x{tile.get('NV', '?')}"
    if variant.get("wino_chunk"):
        extra += f" chunk={variant['wino_chunk']}"
    if variant.get("wino_fused"):
        extra += f" fused x{variant['wino_fused']}"
    return f"{variant['algo']}{extra}"


# ---------------------------------------------------------------- the default by rule

# The rule's bounds (wins_by_rule): maps of at least RULE_MIN_MAP x RULE_MIN_MAP, batches of at
# most RULE_MAX_BATCH, F(RULE_M x RULE_M) fused with at least FUSED_FIRST_TILES tiles a work-item.
RULE_MIN_MAP = 14
RULE_MAX_BATCH = 16
RULE_M = 2
RULE_MIN_VECTOR = 16  # AVX-512, where it was measured (an AVX2 CPU: the tuner's to choose)


def _rule_variant(node: Node, ctx: BindContext) -> dict[str, Any] | None:
    """The fused F(2x2) variant the tuner's space lists with the most tiles per work-item, if
    that is FUSED_FIRST_TILES or more (few channels); else None."""
    if node.op != "conv2d":
        return None
    fused = [v for v in winograd_variants(node, ctx)
             if v["wino_m"] == RULE_M and v.get("wino_fused", 0) >= FUSED_FIRST_TILES]
    return max(fused, key=lambda v: v["wino_fused"], default=None)


def wins_by_rule(node: Node, ctx: BindContext) -> bool:
    """Whether the one-launch F(2x2) kernel is conv2d's default (algorithms.py; the direct
    kernel stays in the tuner's space): on a CPU, a stride-1 3x3 convolution (no dilation, one
    group) on a map of at least RULE_MIN_MAP x RULE_MIN_MAP, with vectors of RULE_MIN_VECTOR
    floats (AVX-512), at a batch of at most
    RULE_MAX_BATCH, where the space offers F(2x2) fused with FUSED_FIRST_TILES or more tiles
    per work-item (few channels: fused_tiles_per_item). There the transforms stay in a
    work-item's registers and cache, and the direct kernel's few output blocks leave the cores
    idle. Measured on an Intel Xeon AVX-512 (pocl 3.1, 2 cores under load 3-7, benchmarks/
    variants.py, one process, interleaved, medians): at batch 1 fashion_best's 28x28 and 14x14
    layers and fashion-plus's max_pooling2d_1 (pooled in the store) ran 1.56-1.72x the direct
    kernel the tuner kept (100 rounds). Whole passes, all defaults, against the direct
    kernel's default on these layers (--sets): batch 1 (60 rounds) fashion_best 1.13x,
    fashion-plus 1.19x, fashion 1.22x, resnet_mini 1.23x, unet_mini 1.31x; batch 8 (30 rounds)
    1.69x, 1.83x, 0.98x (fashion's 14x14x64 layer alone 1.47x, 40 rounds), 1.38x, 2.17x;
    batch 16 (20 rounds) fashion-plus 2.89x (minima 1.73x), resnet_mini 1.39x. On 7x7 maps at
    batch 1 the direct kernel ran faster or alike (fashion-plus's 7x7x64 layer: fused 0.83x;
    unet_mini's 7x7x32: 1.14x of 0.025 ms), hence the map bound (at batch 8 they ran 1.33x and
    1.37x: the tuner's to find). Batch 256 was not measured: the tuner's."""
    if (ctx.target.kind != "cpu" or ctx.target.max_vector < RULE_MIN_VECTOR
            or ctx.batch > RULE_MAX_BATCH or not applies(node, ctx)):
        return False
    shape = _conv_shape(node, ctx)
    if min(shape["H"], shape["W"]) < RULE_MIN_MAP:
        return False
    return _rule_variant(node, ctx) is not None


def own_default(node: Node, ctx: BindContext) -> dict[str, Any]:
    """Its default variant where it wins by rule: F(2x2) fused, the most tiles per work-item."""
    variant = _rule_variant(node, ctx)
    if variant is None:
        raise InternalError(f"node '{node.name}': fused Winograd is not offered here")
    return variant


# ---------------------------------------------------------------- launches

def transform_group(target: Target) -> tuple[int] | None:
    """The transforms' work-groups: 8 work-items on a CPU, where pocl 3.1 keeps a whole group's
    private tiles on one worker thread's stack wherever the kernel's control flow splits it
    into regions (the early returns), and left to choose (1-D grids of thousands of
    work-items) it picked groups whose 6x6 or 9x9 vector tiles overflowed that stack: a
    segmentation fault in winograd_input 5.5 MB below the stack pointer, in unet_mini's
    training step; the fused kernel's groups are 8 for the same reason. A GPU's driver
    chooses (the tiles are registers there). The grids (flat) are multiples of 64."""
    return (8,) if target.kind == "cpu" else None


def fused_group(items: int, target: Target) -> int:
    """Work-items per group of winograd_fused's `items`: 8 (pocl's stack, winograd_launches),
    fewer on a CPU where groups of 8 would leave a compute unit without one (pocl runs a group
    on one thread). At batch 1, resnet_mini's 14x14x32 layer (7 work-items) and
    inception_mini's 14x14 16 -> 24 one, their launches re-enqueued with other groups,
    interleaved (events, 60 rounds, pocl 3.1, 2-core Intel Xeon AVX-512, load 2.9): one group
    of 8 18.6 / 12.4 us median, 13.0 / 8.0 min; two of 4 12.5 / 9.7, 7.2 / 5.1. Launches of
    4+ groups ran alike with 8, 4, 2 or 1 work-items a group."""
    if target.kind != "cpu":
        return 8
    return max(1, min(8, ceil_div(items, max(target.compute_units, 1))))


def winograd_launches(
    ctx: BindContext,
    shape: Mapping[str, int],
    m: int,
    x: Arg,
    w: Arg,
    bias: Arg,
    y: Arg,
    act: Mapping[str, int],
    chunk: int = 0,
    gemm_tile: Mapping[str, int] | None = None,
    fused: int = 0,
) -> NodeBinding:
    """The launches and workspaces of y = act(conv3x3(x, w) + bias) by F(m x m, 3 x 3), for the
    stride-1 convolution `shape` (_conv_shape's keys). chunk: tiles per chunk of the batch
    (0: all at once); the transforms and GEMMs of each chunk run before the next chunk's, so
    its V and Mt may stay in cache. fused: tiles per work-item of winograd_fused, which does the
    input transform, GEMMs and output transform in one launch (0: three launches)."""
    if m not in WINO_MS:
        raise InternalError(f"Winograd F({m}x{m}, 3x3) is not implemented (m = 2, 4 or 7)")
    th, tw, tiles = _tiles(shape, m, ctx.batch)
    chunk = tiles if chunk <= 0 else min(chunk, tiles)
    c, f = shape["C"], shape["F"]
    geo = {**shape, "WINO_M": m, "TH": th, "TW": tw, "WINO_PAD": 1}
    u, v, mt = Workspace(0), Workspace(1), Workspace(2)
    filt_vw = vector_width(f, ctx.target)
    # The filter transform of a parameter depends on the weights only (Launch.once): u keeps it.
    once = isinstance(w, Value) and w.name in ctx.graph.state_map
    constants = (0,) if once else ()
    in_vw = vector_width(c, ctx.target)
    tile, local = with_local_tile({**register_tile(f, ctx.target), **(gemm_tile or {})},
                                  ctx.target)
    pack = {"UPACK": 0, "VPACK": 0, "VPACK_C": 0} if fused else gemm_packing(tile, local, in_vw, ctx.target)
    if pack["UPACK"]:
        filt_vw = vector_width(pack["UPACK"], ctx.target)  # a vector stays inside a panel
    filt = launch(
        "winograd.cl", "winograd_filter", flat(c * f // filt_vw), (w, u),
        {**geo, "VW": filt_vw, "UPACK": pack["UPACK"]}, once=once,
    )
    launches: list[Launch] = [filt]
    if fused:
        # Work-groups of 8 at most (fused_group): pocl 3.1 (CPU) keeps a whole group's
        # private arrays on one thread's stack, and left to choose (1,568 work-items at batch
        # 128) it chose groups whose arrays overflowed it (a segmentation fault).
        fb = fused_filter_block(f, ctx.target)
        if ctx.serial:
            # In a chain (chain.py) a layer's work-items are claimed one by one by workers
            # already awake: fewer work-items than workers leaves a core waiting (unet_mini's
            # 7x7 layer at batch 1, its 4 tiles one work-item: 8.8 us on one core of two,
            # the other waiting; the tuner timed it alone, where a second work-group costs a
            # worker's wake-up). So at least a work-item a worker where there are tiles enough.
            fused = min(fused, max(1, tiles // max(ctx.target.compute_units, 1)))
        defines = {
            **geo, "NT": fused, "VC": vector_width(c, ctx.target), **fb,
            "HAS_BIAS": int(bias != NULL), **act,
        }
        items = ceil_div(tiles, fused)
        # One work-item a group in a chain: its claims then split the work-items evenly (the
        # groups of fused_group left fashion-plus's 28 work-items as groups of 8, 8, 8 and 4:
        # 28 and 19 us a worker, now 24 and 24).
        group = 1 if ctx.serial else fused_group(items, ctx.target)
        launches.append(
            launch(
                "winograd.cl", "winograd_fused", (round_up(items, group),),
                (x, u, bias, y, Int(tiles)), defines, (group,),
            )
        )
        return NodeBinding(tuple(launches), workspaces=(_workspace_floats(shape, m, 0)[0],),
                           constants=constants)
    in_defines = {**geo, "VW": in_vw, "VPACK": pack["VPACK"], "VPACK_C": pack["VPACK_C"]}
    out_defines = {
        **geo, "VW": vector_width(f, ctx.target), "HAS_BIAS": int(bias != NULL), **act
    }
    rows_per_block = max(pack["VPACK"], 1)
    for start in range(0, tiles, chunk):
        n = min(chunk, tiles - start)
        launches.append(
            launch(
                "winograd.cl", "winograd_input", flat(round_up(n, rows_per_block) * c // in_vw),
                (x, v, Int(start), Int(n)), in_defines, transform_group(ctx.target),
            )
        )
        grid2, group2 = gemm_grid(n, f, tile, local, ctx.target)
        grid = (*grid2, (m + 2) ** 2)
        group = (*group2, 1) if local else row_groups(grid, ctx.target)
        launches.append(
            launch(
                "winograd.cl", "winograd_gemm", grid, (v, u, mt, Int(n)),
                {**geo, **tile, **pack}, group,
            )
        )
        launches.append(
            launch(
                "winograd.cl", "winograd_output", flat(n * f // out_defines["VW"]),
                (mt, bias, y, Int(start), Int(n)), out_defines, transform_group(ctx.target),
            )
        )
    return NodeBinding(tuple(launches),
                       workspaces=_workspace_floats(shape, m, chunk, rows_per_block),
                       constants=constants)


def _options(
    node: Node, ctx: BindContext, shape: Mapping[str, int],
    variant: Mapping[str, Any] | None = None,
) -> tuple[int, dict[str, int] | None, int]:
    """The variant's batch chunk ("wino_chunk": tiles, 0 = all), GEMM register tile
    ("wino_tile": {"MR", "VW", "NV"}, default tiling.register_tile) and fused kernel's tiles
    per work-item ("wino_fused", 0 = not fused; with neither of the others), checked: only
    integers that make a valid tile reach the kernels' build options. (variant: the node's
    in ctx unless given.)"""
    v = ctx.variant(node) if variant is None else variant
    chunk = v.get("wino_chunk", 0)
    tile = v.get("wino_tile")
    fused = v.get("wino_fused", 0)
    ok = type(chunk) is int and chunk >= 0 and type(fused) is int and 0 <= fused <= 16
    ok = ok and not (fused and (chunk or tile is not None))
    if tile is not None:
        tile = dict(tile)
        ok = ok and set(tile) == {"MR", "VW", "NV"} and all(type(x) is int for x in tile.values())
        ok = ok and tile["VW"] in (1, 2, 4, 8, 16) and 1 <= tile["MR"] <= 16
        ok = ok and 1 <= tile["NV"] <= 4 and shape["F"] % (tile["VW"] * tile["NV"]) == 0
    if not ok:
        raise InternalError(f"node '{node.name}': bad Winograd variant {dict(v)!r}")
    return chunk, tile, fused


def _check_applies(node: Node) -> None:
    if node.op not in OPS or not winograd_applies(node.attrs):
        raise InternalError(
            f"node '{node.name}' ({node.op}) was given a Winograd variant, which needs a "
            "stride-1, undilated, ungrouped 3x3 convolution"
        )


def bind_conv2d_winograd(node: Node, ctx: BindContext) -> NodeBinding:
    """conv2d's forward pass by F(m x m, 3 x 3), m the variant's "wino_m" (default 4; a softmax
    activation runs after, unfused)."""
    _check_applies(node)
    variant = ctx.variant(node)
    if "algo" not in variant:  # no variant: the default, where it wins by rule (algorithms.py)
        variant = own_default(node, ctx)
    m = variant.get("wino_m", 4)
    shape = _conv_shape(node, ctx)
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    out, after, work = unfused_softmax(node, ctx, workspace=3)
    core = winograd_launches(
        ctx, shape, m, Value(node.inputs[0]), Value(node.params[0]), bias, out,
        epilogue_act(node), *_options(node, ctx, shape, variant),
    )
    return NodeBinding((*core.launches, *after), workspaces=(*core.workspaces, *work),
                       constants=core.constants)


def bind_conv2d_grad_input_winograd(node: Node, ctx: BindContext) -> NodeBinding:
    """conv2d's input gradient dx by F(m x m, 3 x 3), m the variant's "wino_m" (default 4): the
    stride-1 convolution of dy with the kernel rotated 180 degrees and its channel axes swapped
    (read so by the filter transform)."""
    _check_applies(node)
    m = ctx.variant(node).get("wino_m", 4)
    dy, kernel = node.inputs
    shape = _conv_shape(node, ctx)
    return winograd_launches(
        ctx, shape, m, Value(dy), Value(kernel), NULL, Value(node.name), {},
        *_options(node, ctx, shape),
    )


# ---------------------------------------------------------------- the kernel gradient

# The kernel gradient's error beside the direct kernel gradient's (float32 against float64, as
# _ERROR_FACTORS): its transforms are the forward pass's A and G used the other way round (A on
# dy, G^T on the sums), which amplify rounding much less than B^T on the input does. Measured
# in tests/numpy/test_winograd_transforms.py (random N(0,1) inputs and
# gradients, 16 and 64 channels): F(3x3, 2x2) 0.5-1.3x, F(3x3, 4x4) 3.3-7.7x; bounds with room.
_GRAD_KERNEL_ERROR_FACTORS = {2: 4.0, 4: 24.0}


def grad_kernel_applies(node: Node, ctx: BindContext) -> bool:
    return node.op == "conv2d_grad_kernel" and winograd_applies(node.attrs)


def _grad_kernel_shape(node: Node, ctx: BindContext) -> dict[str, int]:
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    return {k: geo[k] for k in ("H", "W", "C", "OH", "OW", "F", "PT", "PL")}


def _grad_kernel_parts(shape: Mapping[str, int], m: int, tiles: int,
                       tile: Mapping[str, int], target: Target) -> int:
    """Parts the sum over tiles is cut into (split_reduction's rule for a GEMM reading one
    tile's V and E rows per step), within the grid's dimension-2 cap of T*T points x parts."""
    from cnnc.backends.opencl.tiling import GRID_GROUPS, block_grid, split_reduction

    tt = (m + 2) ** 2
    blocks = block_grid(shape["C"], shape["F"], tile)
    split = split_reduction(blocks[0] * blocks[1] * tt, tiles, 4 * (shape["C"] + shape["F"]),
                            target)
    return max(1, min(split, GRID_GROUPS[2] // tt))


def _grad_kernel_workspaces(shape: Mapping[str, int], m: int, tiles: int,
                            parts: int) -> tuple[int, int, int]:
    """Floats of V (transformed input tiles), E (transformed dy tiles) and the parts' sums."""
    tt = (m + 2) ** 2
    return tt * tiles * shape["C"], tt * tiles * shape["F"], parts * tt * shape["C"] * shape["F"]


def grad_kernel_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """{"algo": "winograd", "wino_m": m}, largest m first, each also with gemm_tiles' other
    register tiles ("wino_tile"), where the workspaces fit the device's largest buffer and the
    kernels' int indices; [] where Winograd does not apply."""
    if not grad_kernel_applies(node, ctx):
        return []
    shape = _grad_kernel_shape(node, ctx)
    limit = min(ctx.target.limits.max_allocation // 4, INDEX_MAX)
    out: list[dict[str, Any]] = []
    for m in sorted(GRAD_KERNEL_MS, reverse=True):
        tiles = _tiles(shape, m, ctx.batch)[2]
        for tile in gemm_tiles(shape["F"], ctx.target):
            full = {**register_tile(shape["F"], ctx.target), **(tile or {})}
            parts = _grad_kernel_parts(shape, m, tiles, full, ctx.target)
            if max(_grad_kernel_workspaces(shape, m, tiles, parts)) > limit:
                continue
            v: dict[str, Any] = {"algo": NAME, "wino_m": m}
            out.append(v if tile is None else {**v, "wino_tile": tile})
    return out


def grad_gemm_packing(tile: Mapping[str, int], input_vw: int, target: Target) -> dict[str, int]:
    """winograd.cl's VBLK and EPACK for the kernel gradient's GEMM of register tile `tile`: V in
    blocks of the input transform's vectors and E in panels of the block's NR filters, each
    operand of a work-item one stream of consecutive floats (measured on a 2-core Zen 3, the
    fashion layers' kernel-gradient GEMMs at batch 32 and 128: 1.3-2.7x faster). A CPU's
    layout: a GPU's neighbouring work-items read neighbouring floats of the plain one."""
    if target.kind != "cpu":
        return {"VBLK": 0, "EPACK": 0}
    return {"VBLK": input_vw, "EPACK": tile["VW"] * tile["NV"]}


def grad_kernel_error_factor(variant: Mapping[str, Any]) -> float:
    m = int(variant["wino_m"])
    if m not in _GRAD_KERNEL_ERROR_FACTORS:
        raise ValueError(f"Winograd F(3x3, {m}x{m}) is not implemented (m = 2 or 4)")
    return _GRAD_KERNEL_ERROR_FACTORS[m]


def bind_conv2d_grad_kernel_winograd(node: Node, ctx: BindContext) -> NodeBinding:
    """conv2d's kernel gradient dW by F(3x3, m x m), m the variant's "wino_m" (default 4): the
    input transform of the forward pass on the tiles of dy's grid, dy's tiles transformed by A,
    T*T GEMMs summing over tiles (in parts), and G^T . G of the parts' sum (winograd.cl)."""
    if not grad_kernel_applies(node, ctx):
        raise InternalError(
            f"node '{node.name}' ({node.op}) was given a Winograd kernel-gradient variant, which "
            "needs the kernel gradient of a stride-1, undilated, ungrouped 3x3 convolution")
    variant = ctx.variant(node)
    m = variant.get("wino_m", 4)
    shape = _grad_kernel_shape(node, ctx)
    _, gemm_tile, _ = _options(node, ctx, shape)  # checks "wino_tile" as the forward does
    if m not in GRAD_KERNEL_MS:
        raise InternalError(f"node '{node.name}': bad Winograd variant {dict(variant)!r}")
    x, dy = node.inputs
    c, f = shape["C"], shape["F"]
    th, tw, tiles = _tiles(shape, m, ctx.batch)
    tt = (m + 2) ** 2
    geo = {**shape, "WINO_M": m, "TH": th, "TW": tw}
    tile = {**register_tile(f, ctx.target), **(gemm_tile or {})}
    parts = _grad_kernel_parts(shape, m, tiles, tile, ctx.target)
    v, e, mt = Workspace(0), Workspace(1), Workspace(2)
    in_vw, f_vw = vector_width(c, ctx.target), vector_width(f, ctx.target)
    pack = grad_gemm_packing(tile, in_vw, ctx.target)
    dy_vw = vector_width(pack["EPACK"], ctx.target) if pack["EPACK"] else f_vw
    # winograd.cl's GROUPED: the transforms into blocks take the tiles in groups of
    # GROUP_TILES, so their grids cover whole groups
    items = round_up(tiles, GROUP_TILES) if pack["EPACK"] else tiles
    grid2, _ = gemm_grid(c, f, tile, False, ctx.target)
    grid = (*grid2, tt * parts)
    launches = (
        launch("winograd.cl", "winograd_input", flat(items * c // in_vw),
               (Value(x), v, Int(0), Int(tiles)), {**geo, "VW": in_vw, "VBLK": pack["VBLK"]},
               transform_group(ctx.target)),
        launch("winograd.cl", "winograd_dy", flat(items * f // dy_vw),
               (Value(dy), e, Int(0), Int(tiles)), {**geo, "VW": dy_vw, "EPACK": pack["EPACK"]},
               transform_group(ctx.target)),
        launch("winograd.cl", "winograd_grad_gemm", grid, (v, e, mt, Int(tiles)),
               {**geo, **tile, **pack}, row_groups(grid, ctx.target)),
        launch("winograd.cl", "winograd_grad_output", flat(c * f // f_vw),
               (mt, Value(node.name), Int(parts)), {**geo, "VW": f_vw},
               transform_group(ctx.target)),
    )
    return NodeBinding(launches, workspaces=_grad_kernel_workspaces(shape, m, tiles, parts))
