"""conv2d_grad_kernel's "tap vectors" algorithm on a CPU (registered in algorithms.py):
conv2d_grad_rows.cl's TAP_DIRECT kernel, for a convolution whose input channels are a multiple
of the vector width. A kernel row's KW * C taps are KW runs of C consecutive floats of an input
row (one run with stride 1 and no dilation), so a work-item holds TVB vectors of them by MR
filters and per output pixel loads its TVB vectors straight from x and broadcasts its MR
filters' dy: MR + TVB loads per MR * TVB FMAs, a GEMM micro-kernel's ratio, without the
implicit GEMM's bounds check per tap and pixel (conv2d.cl: conv2d_grad_kernel, 12-28% of the
FMA peak on resnet_mini's 16- and 32-channel kernel gradients at batch 128; pocl, Zen 3). The
parts of the batch's output rows are added up by reduce.cl, as the row kernel's are
(bind_grad_rows.py).
"""

from __future__ import annotations

from math import gcd
from typing import Any

from cnnc.backends.opencl.bind_grad_rows import grad_rows_gemm
from cnnc.backends.opencl.launches import BindContext, Int, NodeBinding, Value, Workspace, launch
from cnnc.backends.opencl.primitives import conv_geometry, with_parts_summed
from cnnc.backends.opencl.tiling import register_tile, tuned_split
from cnnc.backends.opencl.tunable import Variant
from cnnc.errors import InternalError
from cnnc.ir.graph import Node

NAME = "grad_taps"

# MR filters x TVB tap vectors: blocks whose MR * TVB accumulators, TVB input vectors and a
# broadcast fit the SIMD registers (resnet_mini's 16-channel kernel gradient at batch 128, pocl,
# Zen 3, load 3.5-3.7, 7 interleaved rounds, twice: 4 x 3 ran 1.2-1.6x the implicit GEMM's
# default (medians, minima 1.45-1.6x), 2 x 6, which spills, 0.8x; on unet_mini's 48 channels
# and mobilenetv3_mini's 1x1 ones no faster than the default or Winograd: the tuner's), the
# most accumulators first, two of them (the tuner gives each op's space at most 20 variants;
# the tuner's own parts, twice the default's, go to the default algorithm).
FILTERS = (1, 2, 4, 8)
BLOCKS = 2

KEYS = {"TVB": (1, 64), "sync_rows": (0, 64)}


def _geometry(node: Node, ctx: BindContext) -> dict[str, int]:
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    return {k: v for k, v in geo.items() if k not in ("CG", "FG")}


def applies(node: Node, ctx: BindContext) -> bool:
    """One group, not a transposed convolution's explicit window. (Its variants are listed on a
    CPU where the channels are a multiple of the vector width; on the gate's edge shapes of odd
    channels, narrower vectors: _fitted.)"""
    return node.attrs["groups"] == 1 and not node.attrs.get("window")


def _fitted(tile: dict[str, int], geo: dict[str, int]) -> dict[str, int]:
    """The variant's block on the geometry: vectors as wide as divide the channels (a vector
    must lie in one input pixel), a work-item's TVB of them covering as many floats as the
    variant's where that divides the row's KW * C, else their greatest common divisor."""
    vw = tile["VW"]
    while geo["C"] % vw:
        vw //= 2
    tva = geo["KW"] * geo["C"] // vw
    return {**tile, "VW": vw, "TVB": gcd(tile["TVB"] * tile["VW"] // vw, tva)}


def offered(node: Node, ctx: BindContext) -> bool:
    """Where the tuner lists it (and where it may be the default): on a CPU, channels a
    multiple of the vector width."""
    return (ctx.target.kind == "cpu" and applies(node, ctx)
            and _geometry(node, ctx)["C"] % ctx.target.max_vector == 0)


def _blocks(node: Node, ctx: BindContext, vw: int, filters: tuple[int, ...] = FILTERS
            ) -> list[tuple[int, int]]:
    """(MR, TVB) blocks of vectors of vw whose MR * TVB accumulators, TVB input vectors and a
    broadcast fit the registers: the most accumulators first, then the fewest loads per pixel
    (MR broadcasts, TVB vectors)."""
    geo = _geometry(node, ctx)
    tva = geo["KW"] * geo["C"] // vw
    regs = ctx.target.vector_registers
    blocks = [(mr * tvb, -mr - tvb, mr, tvb) for mr in filters if geo["F"] % mr == 0
              for tvb in range(1, tva + 1) if tva % tvb == 0 and mr * tvb + tvb + 1 <= regs]
    return [(mr, tvb) for *_, mr, tvb in sorted(blocks, reverse=True)]


def grad_taps_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """Where offered: the BLOCKS blocks of MR filters by TVB tap vectors with the most
    accumulators that fit the registers, with the default parts."""
    if not offered(node, ctx):
        return []
    vw = ctx.target.max_vector
    out: list[dict[str, Any]] = []
    for mr, tvb in _blocks(node, ctx, vw)[:BLOCKS]:
        v = {"algo": NAME, "MR": mr, "VW": vw, "NV": 1, "TVB": tvb}
        out.append({**v, "split": _split(node, ctx, v)})
    return out


def own_default(node: Node, ctx: BindContext) -> dict[str, Any]:
    """Its default variant: the first listed (the most accumulators)."""
    listed = grad_taps_variants(node, ctx)
    if not listed:
        raise InternalError(f"node '{node.name}': tap vectors are not offered here")
    return listed[0]


def wins_by_rule(node: Node, ctx: BindContext) -> bool:
    """Whether it is the default (algorithms.py): where offered, for a window along contiguous
    input columns (KW > 1, stride 1, no dilation), whose taps' block holds at least twice the
    accumulators of the implicit GEMM's default block (tiling.register_tile's MR x NV vectors
    of filters): few filters, whose direct block of one filter vector by MR taps loads MR + 1
    operands per MR FMAs and checks every tap's bounds at every pixel (the taps' 8 x 3: 11
    loads per 24 FMAs). resnet_mini's 16 -> 16 and
    unet_mini's 16 -> 16 and 48 -> 16 3x3 kernel gradients at batch 128 (Intel Xeon AVX-512,
    pocl 3.1, load 2.7, 20 interleaved rounds, benchmarks/variants.py): 8 filters x 3 vectors
    (24 accumulators against 8) ran 1.70x, 1.61x and 1.52x the direct kernel (medians; minima
    1.57x, 1.57x, 1.71x); at 32 filters (16 accumulators) 0.84-1.06x, and Winograd's kernel
    gradient 0.56x: there the tuner's."""
    if not offered(node, ctx):
        return False
    geo = _geometry(node, ctx)
    if geo["KW"] == 1 or (geo["SH"], geo["SW"], geo["DH"], geo["DW"]) != (1, 1, 1, 1):
        return False
    block = own_default(node, ctx)
    direct = register_tile(geo["F"], ctx.target)
    return block["MR"] * block["TVB"] >= 2 * direct["MR"] * direct["NV"]


def _block(node: Node, ctx: BindContext, variant: Variant, geo: dict[str, int]
           ) -> dict[str, int]:
    """The variant's MR, VW and TVB; a variant without TVB (one of the tuner's register
    blocks, MR x VW x NV) takes the most tap vectors that fit the registers beside its MR."""
    tile = {k: int(variant.get(k, 0)) for k in ("MR", "VW", "TVB")}
    if tile["TVB"] == 0 and tile["MR"] and tile["VW"]:
        vw = tile["VW"]
        while geo["C"] % vw:
            vw //= 2
        fits = _blocks(node, ctx, vw, (tile["MR"],))
        tile = {**tile, "VW": vw, "TVB": fits[0][1] if fits else 0}
    return tile


def _split(node: Node, ctx: BindContext, variant: Variant) -> int:
    geo = _geometry(node, ctx)
    items = geo["KH"] * (geo["KW"] * geo["C"] // variant["VW"] // variant["TVB"]) * (
        geo["F"] // variant["MR"])
    gemm = grad_rows_gemm(node, ctx, variant)
    rows = ctx.batch * geo["OH"]
    return max(1, min(rows, tuned_split(items, gemm.reduction, gemm.step_bytes, ctx.target,
                                        variant)))


def bind_conv2d_grad_kernel_taps(node: Node, ctx: BindContext) -> NodeBinding:
    """conv2d_grad_kernel as conv2d_grad_rows.cl's TAP_DIRECT kernel and its parts' sum."""
    x, dy = node.inputs
    out = Value(node.name)
    geo = _geometry(node, ctx)
    variant = ctx.variant(node)
    if "MR" not in variant:  # its default (a variant naming only the algorithm)
        variant = (own_default(node, ctx) if offered(node, ctx) else  # else a gate's edge shape
                   {"MR": max(m for m in FILTERS if geo["F"] % m == 0),
                    "VW": ctx.target.max_vector})
    tile = _block(node, ctx, variant, geo)
    if not applies(node, ctx) or 0 in tile.values() or geo["F"] % tile["MR"]:
        raise InternalError(f"node '{node.name}': tap vectors {dict(variant)!r} need one group "
                            f"and filters a multiple of MR: {geo}")
    tile = {**_fitted(tile, geo), "NV": 1}
    tva = geo["KW"] * geo["C"] // tile["VW"]
    tap_blocks = geo["KH"] * (tva // tile["TVB"])
    filter_blocks = geo["F"] // tile["MR"]
    split = _split(node, ctx, {**variant, **tile})
    parts = Workspace(0)
    grid = (tap_blocks, filter_blocks, split)
    # One part's work-items in a work-group: they run one after the other on one core, all but
    # the first reading the part's rows from its cache.
    # (row_groups 0: the driver's groups instead, as grad_rows.)
    group = ((tap_blocks, filter_blocks, 1)
             if variant.get("row_groups", 1)
             and ctx.target.limits.group_fits((tap_blocks, filter_blocks, 1)) else None)
    sync = int(variant.get("sync_rows", 0)) if group else 0
    args = (Value(x), Value(dy), out if split == 1 else parts, Int(ctx.batch))
    main = launch("conv2d_grad_rows.cl", "conv2d_grad_kernel_rows", grid, args,
                  {**geo, **tile, "SYNC_ROWS": sync, "TAP_DIRECT": 1}, group)
    return with_parts_summed(main, parts, out, geo["KH"] * geo["KW"] * geo["C"] * geo["F"],
                             ctx.target)


def describe(variant: Variant) -> str:
    text = (f"grad taps {variant.get('MR', '?')} filters x {variant.get('TVB', '?')} vectors"
            f" x{variant.get('VW', '?')}")
    if "split" in variant:
        text += f" split={variant['split']}"
    if variant.get("sync_rows"):
        text += f" sync_rows={variant['sync_rows']}"
    return text
