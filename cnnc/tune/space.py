"""The tuner's variant space: which nodes have kernel variants, and which variants each may take.

A variant is a small dict the binders read through `BindContext.variant(node)` (launches.py):

    MR, VW, NV   the register block: MR rows x (VW * NV) columns per work-item (tiling.py)
    row_groups   0: leave work-group shapes to the driver; 1: one row block's columns per group
    split        parts the reduction of a kernel gradient is cut into (added up after)
    local        0: no local-memory tiles on a GPU, where they would otherwise be used
    algo         'direct' (the implicit GEMM), 'phases' (a strided input gradient by phases,
                 opencl/strided_grad.py: the default where it applies), or another algorithm a
                 provider registers below
    wino_m       Winograd's output tile F(m x m, 3x3), with algo 'winograd'
    im2col       0: the implicit GEMM even where few channels make the default copy windows
    wino_fused   tiles per work-item of Winograd in one launch (winograd_fused), 0: not fused

Every variant is generated within the device's properties: blocks whose columns divide the
GEMM's (so no block straddles a group), register blocks within the CPU's vector registers,
work-groups within Target.limits (row_groups and local tiles check the limits themselves, and
the runtime checks each built kernel's CL_KERNEL_WORK_GROUP_SIZE). The space is kept to about
10-20 variants per node so that a whole network tunes in about a minute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.primitives import conv_geometry, uses_im2col
from cnnc.backends.opencl.strided_grad import phases_apply
from cnnc.backends.opencl.target import GRID_GROUPS, Target
from cnnc.backends.opencl.tiling import block_grid, register_tile, registers_used, split_reduction
from cnnc.ir.graph import Node
from cnnc.ir.ops import layer_of

Variant = dict[str, Any]

# The ops whose launches are GEMM-like (conv2d.cl, gemm.cl) and take a variant.
TUNABLE_OPS = (
    "conv2d",
    "conv2d_grad_input",
    "conv2d_grad_kernel",
    "dense",
    "dense_grad_input",
    "dense_grad_kernel",
)


def as_layer(node: Node) -> Node:
    """The node as its launches are bound: a fused node (cnnc/ir/fused.py, residual.py) as the
    layer its op stands for (bind_fused.py and bind_residual.py run that layer's binding under
    the fused node's name), others as they are."""
    layer = layer_of(node.op)
    return node if layer == node.op else replace(node, op=layer)


# Every key a variant may hold, with what its value may be: the cache (cache.py) refuses any
# other key or value.
INT_KEYS: dict[str, tuple[int, int]] = {
    "MR": (1, 16),
    "VW": (1, 16),
    "NV": (1, 4),
    "row_groups": (0, 1),
    "split": (1, GRID_GROUPS[2]),
    "local": (0, 1),
    "wino_m": (2, 6),
    "wino_chunk": (0, 1 << 30),  # Winograd tiles per chunk of the batch (0: all)
    "wino_fused": (0, 16),
    "im2col": (0, 1),  # 0: the implicit GEMM where few channels would copy the windows out  # tiles per work-item of the one-launch Winograd kernel (0: not it)
}
# Keys holding a register tile of their own (Winograd's GEMMs): MR, VW, NV as above.
TILE_VARIANT_KEYS = ("wino_tile",)
ALGOS = ("direct", "phases", "winograd")
VECTOR_WIDTHS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Gemm:
    """What a tunable node's main launch is, as a GEMM: `cols` columns per group (the register
    block's columns must divide them), whether its reduction can be split (kernel gradients),
    whether it may use local tiles (groups == 1, not the transposed product), and its rows,
    columns and reduction length per run (for the split's defaults and for FLOP counts)."""

    cols: int
    rows: int
    reduction: int
    split: bool
    local: bool
    step_bytes: int = 0  # bytes one step of a split reduction reads


def _geometry(node: Node, ctx: BindContext) -> dict[str, int]:
    node = as_layer(node)
    return conv_geometry(node.attrs, ctx.shape(node.inputs[0]))


def gemm_of(node: Node, ctx: BindContext, *, im2col: bool = True) -> Gemm:
    """The GEMM a tunable node binds to (as bind_layers.py and bind_gradients.py bind it);
    im2col=False: the implicit GEMM even where few channels would copy the windows out."""
    node = as_layer(node)
    op, batch = node.op, ctx.batch
    if op == "conv2d":
        geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
        rows = batch * geo["OH"] * geo["OW"]
        depth = geo["KH"] * geo["KW"] * geo["CG"]
        if im2col and uses_im2col(node, geo):
            return Gemm(geo["F"], rows, depth, split=False, local=True)
        return Gemm(geo["FG"], rows, depth, split=False, local=node.attrs["groups"] == 1)
    if op == "conv2d_grad_input":
        geo = conv_geometry(node.attrs, ctx.shape(node.name))
        rows = batch * geo["H"] * geo["W"]
        depth = geo["KH"] * geo["KW"] * geo["FG"]
        return Gemm(geo["CG"], rows, depth, split=False, local=node.attrs["groups"] == 1)
    if op == "conv2d_grad_kernel":
        geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
        pixels = batch * geo["OH"] * geo["OW"]
        rows = geo["KH"] * geo["KW"] * geo["CG"]
        if im2col and uses_im2col(node, geo):
            step = 4 * (geo["KH"] * geo["KW"] * geo["C"] + geo["F"])
            return Gemm(geo["F"], rows, pixels, split=True, local=False, step_bytes=step)
        step = 4 * (geo["C"] + geo["F"])
        return Gemm(geo["FG"], rows, pixels, split=True, local=False, step_bytes=step)
    if op == "dense":
        m, k = ctx.rows_cols(node.inputs[0])
        return Gemm(node.attrs["units"], m, k, split=False, local=True)
    if op == "dense_grad_input":
        k_in, units = ctx.shape(node.inputs[1])
        return Gemm(k_in, ctx.numel(node.inputs[0]) // units, units, split=False, local=True)
    if op == "dense_grad_kernel":
        k_in, units = ctx.shape(node.name)
        rows = ctx.numel(node.inputs[0]) // k_in
        return Gemm(units, k_in, rows, split=True, local=False, step_bytes=4 * (k_in + units))
    raise ValueError(f"{op} has no kernel variants")


def tunable(node: Node) -> bool:
    return as_layer(node).op in TUNABLE_OPS


def default_algo(node: Node, ctx: BindContext) -> str:
    """The algorithm the binders choose without a variant: a strided input gradient's phases
    (the direct kernel's zero terms left out), else the direct kernel."""
    node = as_layer(node)
    strided = node.op == "conv2d_grad_input" and phases_apply(
        conv_geometry(node.attrs, ctx.shape(node.name))
    )
    return "phases" if strided else "direct"


def default_variant(node: Node, ctx: BindContext) -> Variant:
    """What the binders choose for `node` without a variant, spelled out."""
    gemm = gemm_of(node, ctx)
    variant: Variant = {"algo": default_algo(node, ctx), **register_tile(gemm.cols, ctx.target)}
    if gemm.split:
        variant["split"] = _default_split(gemm, variant, ctx.target)
    return variant


def _default_split(gemm: Gemm, tile: Mapping[str, int], target: Target) -> int:
    blocks = block_grid(gemm.rows, gemm.cols, tile)
    return split_reduction(blocks[0] * blocks[1], gemm.reduction, gemm.step_bytes, target)


def _tiles(cols: int, target: Target) -> list[dict[str, int]]:
    """Register blocks whose columns divide `cols`, within the device's vector registers."""
    tiles = []
    if target.kind == "cpu":
        # Vectors up to two registers wide (float16 on AVX2 was measured competitive);
        # 2 to 8 rows; blocks within the vector registers.
        widths = [v for v in VECTOR_WIDTHS if v <= 2 * target.max_vector]
        for vw in widths:
            for nv in (1, 2):
                for mr in (8, 4, 2):
                    tile = {"MR": mr, "VW": vw, "NV": nv}
                    if cols % (vw * nv) or registers_used(tile, target) > target.vector_registers:
                        continue
                    if mr * nv < 4:  # too few accumulators to hide the FMA latency
                        continue
                    tiles.append(tile)
        # Vectors of at least half a register; the fullest blocks first (they hide the FMA
        # latency best), so a search cut short by its budget has tried the likeliest.
        widest = max((t["VW"] for t in tiles), default=1)
        tiles = [t for t in tiles if 2 * t["VW"] >= min(target.max_vector, widest)]
        tiles.sort(key=lambda t: -registers_used(t, target))
    else:
        for vw in (4, 2, 1):
            for nv in (1, 2):
                for mr in (2, 4, 8):
                    if cols % (vw * nv) == 0:
                        tiles.append({"MR": mr, "VW": vw, "NV": nv})
        widest = max((t["VW"] for t in tiles), default=1)
        tiles = [t for t in tiles if t["VW"] * 2 >= widest]
    return tiles


# ---------------------------------------------------------------- other algorithms
# Registration point for variants of other algorithms (Winograd: cnnc/backends/opencl/
# winograd.py on branch `winograd`). A provider maps (node, ctx) to variant dicts carrying
# "algo", and states the algorithm's error growth as a factor on the gate's tolerance.


def _winograd_variants(node: Node, ctx: BindContext) -> list[Variant]:
    try:
        from cnnc.backends.opencl.winograd import winograd_variants
    except ImportError:  # the Winograd kernels are not part of this build
        return []
    return [dict(v) for v in winograd_variants(node, ctx)]


ALGORITHM_PROVIDERS: list[Callable[[Node, BindContext], list[Variant]]] = [_winograd_variants]


def error_factor(variant: Mapping[str, Any]) -> float:
    """How much larger than a direct sum's the variant's rounding error may be (the gate's
    tolerance is multiplied by it): 1 for the direct algorithm."""
    if variant.get("algo", "direct") == "winograd":
        from cnnc.backends.opencl.winograd import winograd_error_factor

        return float(winograd_error_factor(int(variant["wino_m"])))
    return 1.0


# ---------------------------------------------------------------- the space


def variant_space(node: Node, ctx: BindContext) -> list[Variant]:
    """Every variant the tuner may choose for `node`, the default first (no duplicates)."""
    gemm = gemm_of(node, ctx)
    target = ctx.target
    default = default_variant(node, ctx)
    out: list[Variant] = [default]

    def add(variant: Variant) -> None:
        if variant not in out:
            out.append(variant)

    # Other algorithms first, the fewest multiplications first (Winograd's largest m): they
    # change the arithmetic, tiles only how fast it runs, so a search that its budget cuts short
    # has tried the likeliest gains (F(4x4) ran the fashion 3x3 convolutions 3.6-5.7x faster
    # than the direct kernel on a Zen 1; a tile alone, 1.1-2.1x).
    algorithms = [v for provider in ALGORITHM_PROVIDERS for v in provider(as_layer(node), ctx)]
    for variant in sorted(algorithms, key=lambda v: -int(v.get("wino_m", 0))):
        add(variant)

    # A strided input gradient: the direct kernel (all taps) with the default's block too.
    if default["algo"] == "phases":
        add({**default, "algo": "direct"})

    # Few channels: the implicit GEMM instead of copying the windows out (im2col), with the
    # default block and the largest one.
    layer = as_layer(node)
    if layer.op in ("conv2d", "conv2d_grad_kernel") and uses_im2col(layer, _geometry(node, ctx)):
        direct = gemm_of(as_layer(node), ctx, im2col=False)
        for tile in [register_tile(direct.cols, target), *_tiles(direct.cols, target)[:1]]:
            variant = {"algo": "direct", **tile, "im2col": 0}
            if direct.split:
                variant["split"] = _default_split(direct, tile, target)
            add(variant)
    for tile in _tiles(gemm.cols, target):
        variant = {"algo": default["algo"], **tile}
        if gemm.split:
            variant["split"] = _default_split(gemm, tile, target)
        add(variant)
    # Work-group shape: the driver's instead of row groups (CPU), for the default block.
    if target.kind == "cpu":
        add({**default, "row_groups": 0})
    # Local tiles off, where the default uses them (GPU).
    if gemm.local and target.local_tiling:
        add({**default, "local": 0})
    # Reduction parts: half and twice the default's, and none.
    if gemm.split:
        base = default["split"]
        for split in (base // 2, base * 2, 1):
            if 1 <= split <= min(GRID_GROUPS[2], gemm.reduction):
                add({**default, "split": split})
    return out


def describe(variant: Mapping[str, Any]) -> str:
    """'4x8x2' and the flags that differ from the defaults ('4x8x2 split=3 no-row-groups')."""
    algo = variant.get("algo", "direct")
    if algo not in ("direct", "phases"):
        extra = f" m={variant['wino_m']}" if "wino_m" in variant else ""
        tile = variant.get("wino_tile")
        if tile:
            extra += f" {tile.get('MR', '?')}x{tile.get('VW', '?')}x{tile.get('NV', '?')}"
        if variant.get("wino_chunk"):
            extra += f" chunk={variant['wino_chunk']}"
        if variant.get("wino_fused"):
            extra += f" fused x{variant['wino_fused']}"
        return f"{variant['algo']}{extra}"
    text = f"{variant.get('MR', '?')}x{variant.get('VW', '?')}x{variant.get('NV', '?')}"
    if "split" in variant:
        text += f" split={variant['split']}"
    if variant.get("row_groups", 1) == 0:
        text += " no-row-groups"
    if variant.get("local", 1) == 0:
        text += " no-local"
    if variant.get("im2col", 1) == 0:
        text += " no-im2col"
    return f"phases {text}" if algo == "phases" else text
