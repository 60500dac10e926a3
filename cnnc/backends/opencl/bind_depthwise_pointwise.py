"""Binder of depthwise_pointwise (cnnc/ir/depthwise_pointwise.py): node -> one
kernels/depthwise_pointwise.cl launch (after each `_bn` part's hoisted batchnorm_fold), the op's
one algorithm (registered in algorithms.py, so the tuner sizes its register block).

The default register block is chosen from the device: the pointwise part's VW * NV channels (VW
the widest vector dividing its K filters, as many vectors as make NR = K up to four, so that
each depthwise value is computed once), the depthwise slice VD the widest vector dividing its
C * M channels, and MR the most pixels (8, 4, 2, 1) whose accumulators, depthwise slices and
weight vectors fit the CPU's vector registers (a GPU: its rows per work-item). A tuned variant
sets MR, VW and NV in its place (VD stays the binder's).

The staged algorithm (CPUs: depthwise_pointwise.cl's depthwise_pointwise_staged) computes a
pixel block's depthwise slice into a private array first, then the 1x1 convolution of it: its
register block is a plain GEMM's (tiling.register_tile over the K filters, MR pixels), its
depthwise vector VD the widest dividing the C * M channels, and MR * C * M floats within
STAGED_FLOATS.

The row algorithm (CPUs, their default: depthwise_pointwise_rows) is the staged one over MR
pixels of one output row, MR cutting each row evenly, in ROWS_GROUP's work-groups of row blocks
(bind_depthwise_direct.py): the row's windows share their input columns, and the window
arithmetic and bounds checks are made per row of taps and per column, not per tap and pixel.
Measured on pocl (loaded 2-core Zen 3, batch 256): shufflenet_mini's 7x7x24 blocks (stride 1
and 2) 1.5-2x faster than the staged kernel's best block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnnc.backends.opencl.bind_depthwise_direct import geometry_of, row_block, rows_group
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
from cnnc.backends.opencl.primitives import bn_fold, pad_columns
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import (
    accumulator_registers,
    gemm_grid,
    padded_tiles,
    registers_used,
    tuned_tile,
    vector_width,
)
from cnnc.backends.opencl.tunable import EdgeShape, Gemm, Variant, tile_text
from cnnc.errors import InternalError
from cnnc.intmath import ceil_div, round_up
from cnnc.ir.activations import kernel_defines
from cnnc.ir.depthwise_pointwise import parts
from cnnc.ir.fused import FOLDED_LAYER
from cnnc.ir.graph import Graph, Node

MAX_VECTORS = 4  # NV's range in the tuner's space (cnnc/tune/space.py)


def block(filters: int, channels: int, target: Target) -> dict[str, int]:
    """The register block for K = `filters` pointwise and F = `channels` depthwise channels."""
    vw = vector_width(filters, target)
    nv = max(n for n in range(1, MAX_VECTORS + 1) if filters % (vw * n) == 0)
    vd = vector_width(channels, target)
    if target.kind != "cpu":
        return {"MR": target.rows_per_item, "VW": vw, "NV": nv, "VD": vd}
    for mr in (8, 4, 2, 1):  # the GEMM block's registers and the MR depthwise slices
        registers = (registers_used({"MR": mr, "VW": vw, "NV": nv}, target)
                     + mr * ceil_div(vd, target.max_vector))
        if registers <= target.vector_registers:
            break
    return {"MR": mr, "VW": vw, "NV": nv, "VD": vd}


def default_tile(filters: int, target: Target) -> dict[str, int]:
    """`block`'s MR x (VW * NV) for `filters` pointwise filters (VD takes at most one vector
    register, whatever the channels: the same MR for every C * M)."""
    tile = block(filters, filters, target)
    return {k: tile[k] for k in ("MR", "VW", "NV")}


def _sizes(node: Node, ctx: BindContext) -> tuple[Node, Node, dict[str, int], int, int]:
    x = node.inputs[0]
    dw, pw = parts(node, ctx.shape(x))
    geo = geometry_of(dw.attrs, ctx.shape(x))
    return dw, pw, geo, dw.shape[-1], node.shape[-1]


def dwpw_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The launch as the tuner sees it: rows the output pixels, columns the pointwise filters
    (whose blocks must divide them), the depthwise channels the reduction."""
    _, _, geo, channels, filters = _sizes(node, ctx)
    rows = ctx.batch * geo["OH"] * geo["OW"]
    return Gemm(filters, rows, channels, split=False, local=False)


def tile_of(node: Node, ctx: BindContext) -> dict[str, int]:
    """The node's register block: `block`'s, with the MR, VW and NV its variant sets."""
    _, _, _, channels, filters = _sizes(node, ctx)
    base = block(filters, channels, ctx.target)
    tile = tuned_tile(filters, ctx.target, ctx.variant(node), base=lambda c, t: dict(base))
    return {**tile, "VD": base["VD"]}


def _weights(part: Node, ctx: BindContext, cols: int, first: int
             ) -> tuple[tuple[Launch, ...], Arg, Arg, tuple[int, ...]]:
    """A part's kernel and bias arguments: its parameters, or for a `_bn` part the workspaces
    `first` and `first + 1` its hoisted fold writes (with that launch and their sizes)."""
    if part.op in FOLDED_LAYER.values():
        w, b = Workspace(first), Workspace(first + 1)
        fold, size = bn_fold(part, ctx, cols, w, b)
        return (fold,), w, b, (size, cols)
    bias = Value(part.params[1]) if part.attrs["use_bias"] else NULL
    return (), Value(part.params[0]), bias, ()


def bind_depthwise_pointwise(node: Node, ctx: BindContext) -> NodeBinding:
    _, _, geo, _, filters = _sizes(node, ctx)
    tile = tile_of(node, ctx)
    pixels = ctx.batch * geo["OH"] * geo["OW"]
    grid, group = gemm_grid(pixels, filters, tile, False, ctx.target, ctx.variant(node))
    return _bind(node, ctx, "depthwise_pointwise", tile, grid, group)


def _bind(node: Node, ctx: BindContext, kernel: str, tile: dict[str, int],
          grid: tuple[int, ...], group: tuple[int, ...] | None,
          padded: Mapping[str, int] | None = None) -> NodeBinding:
    """The launch, after the parts' folds; with `padded` ({"KP": columns}: the row kernel's
    padded filters) after the pointwise kernel's padding into a workspace of its own too, run
    once per change of the weights as the folds are."""
    x = node.inputs[0]
    dw, pw, geo, channels, filters = _sizes(node, ctx)
    folds_dw, dw_w, dw_b, sizes_dw = _weights(dw, ctx, channels, 0)
    folds_pw, pw_w, pw_b, sizes_pw = _weights(pw, ctx, filters, len(sizes_dw))
    if padded:
        at = len(sizes_dw) + len(sizes_pw)
        pad = pad_columns(pw_w, Workspace(at), channels, filters, padded["KP"], ctx.target,
                          once=True)
        folds_pw, pw_w = (*folds_pw, pad), Workspace(at)
        sizes_pw = (*sizes_pw, channels * padded["KP"])
        tile = {**tile, **padded}
    dw_act, pw_act = dw.attrs["activation"], pw.attrs["activation"]
    act = pw_act if pw_act != "linear" else dw_act
    defines = {**geo, **tile, "K": filters, **kernel_defines(act),
               "DW_BIAS": int(dw_b != NULL), "PW_BIAS": int(pw_b != NULL),
               "DW_ACT": int(dw_act != "linear"), "PW_ACT": int(pw_act != "linear")}
    args = (Value(x), dw_w, dw_b, pw_w, pw_b, Value(node.name), Int(ctx.batch))
    fused = launch("depthwise_pointwise.cl", kernel, grid, args, defines, group)
    workspaces = (*sizes_dw, *sizes_pw)
    return NodeBinding((*folds_dw, *folds_pw, fused), workspaces=workspaces,
                       constants=tuple(range(len(workspaces))))


def dwpw_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """The default's columns (every depthwise value computed once) with other pixel counts,
    four first, whose accumulators fit the vector registers: the weight vectors and depthwise
    slices, each read by a few FMAs, can be memory operands. Measured on pocl (2-core Zen 3,
    batch 256, a shared machine): four pixels ran shufflenet_mini's stride-1 blocks (24
    channels, 24 filters) and mobilenet_mini's 1.05-1.8x faster than the default's two, and
    mobilenetv3_mini's stride-2 one (48 channels) 0.8-1.1x as fast from run to run: the
    tuner's to choose. CPU only: a GPU's work-items want few registers."""
    target = ctx.target
    if target.kind != "cpu":
        return []
    _, _, _, _, filters = _sizes(node, ctx)
    tile = default_tile(filters, target)
    out = []
    for mr in (4, 8, 2, 1):
        row = {**tile, "MR": mr}
        if mr != tile["MR"] and accumulator_registers(row, target) <= target.vector_registers:
            out.append({"algo": NAME, **row})
    return out


def dwpw_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """The node's own shapes at batches 3 and 1 (a partial pixel block, a single image): its
    columns are its filters, its pixels any count."""
    states = graph.state_map
    inputs = {v: tuple(graph.shape_of(v)[1:]) for v in node.operands if v not in states}
    state = {v: tuple(states[v].shape) for v in node.operands if v in states}
    return [EdgeShape(f"batch {b}, as built", inputs, state, node.attrs, b) for b in (3, 1)]


def describe(variant: Variant) -> str:
    return f"depthwise+pointwise {tile_text(variant)}"


# The staged kernel's private array, MR pixels by C * M channels, at most this many floats
# (16 KiB: half a Zen 3 core's L1 data cache, the other half for the weights it streams).
STAGED_FLOATS = 4096


def staged_applies(node: Node, ctx: BindContext) -> bool:
    """CPUs only (a GPU work-item's private array of a few KiB would spill), and only where
    two pixels' depthwise channels fit STAGED_FLOATS."""
    _, _, _, channels, _ = _sizes(node, ctx)
    return ctx.target.kind == "cpu" and 2 * channels <= STAGED_FLOATS


def staged_default(filters: int, target: Target) -> dict[str, int]:
    """The GEMM phase's block for K = `filters`: the widest vector dividing them, two per row
    where they divide too, and the most pixels (8, 4, 2, 1) within the vector registers. Not
    register_tile's three vectors of 24 or 72 filters: more pixels share each depthwise
    tap's weights, and 8 x 8 ran shufflenet_mini's and mobilenetv3_mini's blocks (24 filters)
    1.2-1.4x faster than 4 x 24 (pocl, loaded 2-core Zen 3)."""
    vw = vector_width(filters, target)
    nv = 2 if filters % (2 * vw) == 0 else 1
    for mr in (8, 4, 2, 1):
        tile = {"MR": mr, "VW": vw, "NV": nv}
        if registers_used(tile, target) <= target.vector_registers:
            break
    return tile


def staged_tile(node: Node, ctx: BindContext) -> dict[str, int]:
    """staged_default over the K filters (MR pixels by VW * NV filters), with the variant's
    MR, VW and NV, its MR cut to what STAGED_FLOATS holds; VD the widest vector dividing the
    depthwise channels."""
    _, _, _, channels, filters = _sizes(node, ctx)
    tile = tuned_tile(filters, ctx.target, ctx.variant(node), base=staged_default)
    while tile["MR"] > 1 and tile["MR"] * channels > STAGED_FLOATS:
        tile["MR"] //= 2
    return {**tile, "VD": vector_width(channels, ctx.target)}


def bind_staged(node: Node, ctx: BindContext) -> NodeBinding:
    _, _, geo, _, _ = _sizes(node, ctx)
    tile = staged_tile(node, ctx)
    pixels = ctx.batch * geo["OH"] * geo["OW"]
    grid = (ceil_div(pixels, tile["MR"]), 1)
    # one work-item per group (measured on pocl, Zen 3: groups of 4-64 pixel blocks ran the
    # one-phase kernel 0.66-0.88x as fast), unless the variant leaves it to the driver
    group = (1, 1) if ctx.variant(node).get("row_groups", 1) else None
    return _bind(node, ctx, "depthwise_pointwise_staged", tile, grid, group)


def staged_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """As dwpw_gemm: pixels by pointwise filters, the depthwise channels the reduction."""
    return dwpw_gemm(node, ctx, variant)


def staged_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """The default block and two others of more or fewer pixels (6 x 2 vectors, 8 x 1, ...)
    within the vector registers (the GEMM phase's; the depthwise phase holds MR vectors). Two
    only: the one-phase kernel's variants come next in the tuner's space, and a search that its
    patience cuts short should reach them (the tile search adds the other blocks after)."""
    if not staged_applies(node, ctx):
        return []
    _, _, _, channels, filters = _sizes(node, ctx)
    target = ctx.target
    default = staged_default(filters, target)
    out = [{"algo": STAGED, **default}]
    vw = default["VW"]
    for mr, nv in ((6, 2), (8, 1), (4, 2), (6, 1), (4, 1), (2, 1)):
        row = {"MR": mr, "VW": vw, "NV": nv}
        variant = {"algo": STAGED, **row}
        if (len(out) == 3 or filters % (vw * nv) or variant in out
                or registers_used(row, target) > target.vector_registers
                or mr * channels > STAGED_FLOATS):
            continue
        out.append(variant)
    return out


def describe_staged(variant: Variant) -> str:
    return f"depthwise+pointwise staged {tile_text(variant)}"


NAME = "fused"
STAGED = "staged"


def rows_default(filters: int, target: Target) -> dict[str, int]:
    """staged_default's block, but every filter in one GEMM block (NV up to MAX_VECTORS) where
    four pixels' block of them fits the registers: the row's pixels then go through the GEMM
    in GR's register blocks once, not once per VW filters. Measured on pocl (loaded 2-core Zen
    3, batch 256): 7-pixel rows by 24 filters (as 4 + 3) 1.1-1.3x faster than by 8 filters
    three times, on shufflenet_mini's four blocks and mobilenetv3_mini's (48 channels)."""
    tile = staged_default(filters, target)
    whole = filters // tile["VW"]
    row = {**tile, "MR": 4, "NV": whole}
    if whole <= MAX_VECTORS and registers_used(row, target) <= target.vector_registers:
        return {**tile, "NV": whole}
    return tile


def rows_tile(node: Node, ctx: BindContext) -> dict[str, int]:
    """The row kernel's block: rows_default's with the variant's MR, VW and NV, its MR cut to
    what STAGED_FLOATS holds and to pixels cutting each output row evenly
    (bind_depthwise_direct.row_block), VD the widest vector dividing the depthwise channels,
    and GR the most of the MR pixels whose GEMM block of VW * NV filters fits the registers
    (a 7-pixel row by 24 filters as blocks of 4 and 3)."""
    _, _, geo, channels, filters = _sizes(node, ctx)
    variant = ctx.variant(node)
    tile = tuned_tile(padded_filters(filters, variant), ctx.target, variant, base=rows_default)
    while tile["MR"] > 1 and tile["MR"] * channels > STAGED_FLOATS:
        tile["MR"] //= 2
    tile["VD"] = vector_width(channels, ctx.target)
    mr = row_block(geo["OW"], tile["MR"])
    return {**tile, "MR": mr, "GR": gemm_rows({**tile, "MR": mr}, ctx.target)}


def padded_filters(filters: int, variant: Variant) -> int:
    """The pointwise kernel's columns as the row kernel reads them: the K filters, or with a
    variant's "pad": 1 (its VW and NV stated) K rounded up to the block's columns
    (depthwise_pointwise.cl -D KP, as conv2d.cl's -D FP: tiling.padded_tiles)."""
    if not variant.get("pad", 0):
        return filters
    if "VW" not in variant or "NV" not in variant:
        raise InternalError(f"padded filters need a variant's register block, not {variant}")
    return round_up(filters, int(variant["VW"]) * int(variant["NV"]))


def gemm_rows(tile: Mapping[str, int], target: Target) -> int:
    """GR: the most of the block's MR pixels whose GEMM block of VW * NV filters fits the vector
    registers (at least one)."""
    gr = tile["MR"]
    while gr > 1 and registers_used({**tile, "MR": gr}, target) > target.vector_registers:
        gr -= 1
    return gr


def rows_registers(tile: Mapping[str, int], target: Target) -> int:
    """The vector registers the row kernel's GEMM phase holds: a GR-pixel block's."""
    return registers_used({**tile, "MR": gemm_rows(tile, target)}, target)


def bind_rows(node: Node, ctx: BindContext) -> NodeBinding:
    _, _, geo, _, filters = _sizes(node, ctx)
    tile = rows_tile(node, ctx)
    blocks = ctx.batch * geo["OH"] * ceil_div(geo["OW"], tile["MR"])
    group = rows_group(blocks, 1, ctx.target, ctx.variant(node))
    grid = (ceil_div(blocks, group[0]) * group[0] if group else blocks, 1)
    kp = padded_filters(filters, ctx.variant(node))
    return _bind(node, ctx, "depthwise_pointwise_rows", tile, grid, group,
                 {"KP": kp} if kp != filters else {})


def rows_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """The row kernel with its filters padded (tiling.padded_tiles), with one row block per
    work-group beside ROWS_GROUP's, with
    staged_default's narrower GEMM block, and with blocks of at most four and two pixels (a
    7-wide row as 4 + 3, 2 + 2 + 2 + 1). CPU only, as the staged kernel."""
    if not staged_applies(node, ctx):
        return []
    _, _, _, _, filters = _sizes(node, ctx)
    default = rows_default(filters, ctx.target)
    # The filters padded to blocks of the widest vectors where those do not divide them, the
    # default's pixels a block (a row's 7 pixels as 6 + 1 ran slower than as 7 on
    # mobilenetv3_mini's 7x7x48 -> 24 block).
    padded = [{"algo": ROWS, **tile, "MR": default["MR"], "pad": 1}
              for tile in padded_tiles(filters, ctx.target)]
    out = [v for i, v in enumerate(padded) if v not in padded[:i]]
    out.append({"algo": ROWS, **default, "rows_group": 1})
    narrow = staged_default(filters, ctx.target)
    if narrow != default:  # the filters VW * NV at a time, the row's pixels in one block
        out.append({"algo": ROWS, **narrow})
    for mr in (4, 2):
        out.append({"algo": ROWS, **default, "MR": mr})
    return out


def describe_rows(variant: Variant) -> str:
    group = f" rows_group={variant['rows_group']}" if "rows_group" in variant else ""
    return f"depthwise+pointwise rows {tile_text(variant)}{group}"


ROWS = "staged_rows"
