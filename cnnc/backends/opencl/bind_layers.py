"""Binders of the layer ops (cnnc/ir/layers.py): node -> launches, one function per op, and
their table `BINDERS`, keyed by op name. conv2d and dense have several algorithms, registered in
algorithms.py (which binds them): their direct ones, and the GEMMs those launch, are here."""
from __future__ import annotations

from collections.abc import Mapping

from cnnc.backends.opencl.bind_merges import bind_merge
from cnnc.backends.opencl.launches import (
    NULL,
    ZEROS,
    Arg,
    BindContext,
    Binder,
    Float,
    Int,
    Launch,
    NodeBinding,
    Value,
    Workspace,
    bind_view,
    elementwise_launch,
    launch,
)
from cnnc.backends.opencl.primitives import (
    CONCAT_MAX_INPUTS,
    activation,
    affine_defines,
    channel_grid,
    concat_rows,
    conv_geometry,
    copy_block,
    epilogue_act,
    global_pool_defines,
    im2col,
    matmul,
    pad_columns,
    pad_rows,
    unfused_softmax,
    uses_im2col,
    window_defines,
)
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import (
    exact_row_tile,
    flat,
    gemm_grid,
    tuned_tile,
    vector_width,
    with_local_tile,
)
from cnnc.backends.opencl.tunable import Gemm, Variant
from cnnc.errors import InternalError
from cnnc.intmath import round_up
from cnnc.ir.graph import Node


def bind_input(node: Node, ctx: BindContext) -> NodeBinding:
    return NodeBinding(fed=True)


def bind_conv2d_direct(node: Node, ctx: BindContext) -> NodeBinding:
    """conv2d as an implicit GEMM (conv2d.cl), or with few channels, its windows copied out and
    multiplied (im2col + gemm.cl)."""
    x = node.inputs[0]
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    geo = conv_geometry(node.attrs, ctx.shape(x))
    variant = with_exact_rows(node, ctx, ctx.variant(node))
    if uses_im2col(node, geo, variant, ctx.target):
        return _bind_conv2d_im2col(node, ctx, geo, bias, variant)
    gemm = conv2d_gemm(node, ctx, variant)
    fp = padded_filters(node, geo, variant)
    tile, local = with_local_tile(
        tuned_tile(gemm.cols if fp == geo["F"] else fp, ctx.target, variant),
        ctx.target,
        gemm.local and bool(variant.get("local", 1)) and fp == geo["F"],
    )
    defines = {**geo, **tile, "HAS_BIAS": int(bias != NULL), **epilogue_act(node)}
    gemm_out, after, work = unfused_softmax(node, ctx, workspace=0)
    grid, group = gemm_grid(gemm.rows, geo["F"], tile, local, ctx.target, variant)
    split = forward_split(node, ctx, geo, variant, local)
    if split > 1:
        if fp != geo["F"]:
            raise InternalError(f"node '{node.name}': a forward pass in {split} reduction parts "
                                "cannot pad its kernel's columns")
        return _bind_conv2d_parts(node, ctx, geo, defines, grid, group, split, bias, gemm_out,
                                  after, work)
    kernel: Arg = Value(node.params[0])
    launches: tuple[Launch, ...] = ()
    constants: tuple[int, ...] = ()
    if fp != geo["F"]:
        # The kernel's columns padded with zeros to fp, once per change of the weights where
        # it is one (a folded batch norm's kernel is its node's constant workspace too).
        once = node.params[0] in ctx.graph.state_map
        padded = Workspace(len(work))
        taps = geo["KH"] * geo["KW"] * geo["C"]
        launches = (pad_columns(kernel, padded, taps, geo["F"], fp, ctx.target, once=once),)
        kernel, work = padded, (*work, taps * fp)
        constants = (padded.index,) if once else ()
        defines["FP"] = fp
    args = (Value(x), kernel, bias, ZEROS, gemm_out, Int(ctx.batch))
    conv = launch("conv2d.cl", "conv2d_forward", grid, args, defines, group)
    return NodeBinding((*launches, conv, *after), workspaces=work, zeros=geo["KW"] * geo["CG"],
                       constants=constants)


def padded_filters(node: Node, geo: Mapping[str, int], variant: Variant) -> int:
    """The kernel's columns as conv2d_forward reads them: F, or with a variant's "pad": 1 (the
    register block's VW and NV stated) F rounded up to the block's columns (conv2d.cl -D FP),
    where the widest vectors do not divide F (tiling.padded_tiles). Ungrouped only (so the
    padded block's columns are the GEMM's, not a group's)."""
    f = geo["F"]
    if not variant.get("pad", 0):
        return f
    if node.attrs["groups"] != 1 or "VW" not in variant or "NV" not in variant:
        raise InternalError(f"node '{node.name}': padded columns need an ungrouped convolution "
                            f"and a variant's register block, not {dict(variant)}")
    return round_up(f, int(variant["VW"]) * int(variant["NV"]))


# Forward parts (conv2d.cl -D SPLIT): offered where the output has at most SPLIT_MAX_ROWS
# pixels (batch x OH x OW: a 16x16 map at batch 1), the most of SPLIT_PARTS that keeps
# SPLIT_MIN_DEPTH reduction steps (taps x channels) a part; the default on a CPU up to
# SPLIT_DEFAULT_ROWS (an 8x8 map at batch 1). The seed model at batch 1 (benchmarks/
# forward_split.py, pocl, Xeon AVX-512, interleaved, loads 6-10, three runs): its 7x7
# convolutions (49 GEMM rows: 7 row blocks of 8) in 4 parts 1.5-1.7x (128 -> 256 channels) and
# 1.6x to 11x (256 -> 256, then pooled) as fast, the 14x14 ones (196 rows) 0.85-1.0x; fashion-best's
# 7x7 ones 1.3-1.4x.
SPLIT_MAX_ROWS = 256
SPLIT_DEFAULT_ROWS = 64
SPLIT_PARTS = (4, 2)
SPLIT_MIN_DEPTH = 32
# By default 4 parts, where each keeps this many reduction steps, so that the GEMM's work
# dwarfs the second launch: the seed model's 7x7 256 -> 256 convolution (2,304 steps) ran
# 1.5-2.1x as fast in 4 parts (four interleaved runs, the sets' order alternated in the last
# two), its 7x7 128 -> 256 one (1,152) 0.8-1.2x, fashion-best's 7x7 128 -> 128 ones (1,152)
# 0.76-1.0x in 4 parts and 0.93-1.08x in 2 (their launches ~110-170 us, the finish's ~10-20 us
# under load).
SPLIT_DEFAULT_PARTS = 4
SPLIT_DEFAULT_DEPTH = 512


def _parts(geo: Mapping[str, int], min_depth: int) -> int:
    depth = geo["KH"] * geo["KW"] * geo["CG"]
    return next((p for p in SPLIT_PARTS if depth // p >= min_depth and p <= geo["CG"]), 1)


def offered_split(geo: Mapping[str, int], batch: int) -> int:
    """The parts worth offering a forward pass (1: none)."""
    if batch * geo["OH"] * geo["OW"] > SPLIT_MAX_ROWS:
        return 1
    return _parts(geo, SPLIT_MIN_DEPTH)


def default_split(geo: Mapping[str, int], batch: int, target: Target) -> int:
    """The forward pass's parts without a tuned "split" on a CPU's smallest maps, where a map's
    few register blocks (row groups) leave a core idle and each streams the whole kernel:
    SPLIT_DEFAULT_PARTS where each keeps SPLIT_DEFAULT_DEPTH steps; else 1 (a GPU keeps its
    local tiles)."""
    if target.kind != "cpu" or batch * geo["OH"] * geo["OW"] > SPLIT_DEFAULT_ROWS:
        return 1
    depth = geo["KH"] * geo["KW"] * geo["CG"]
    parts = SPLIT_DEFAULT_PARTS
    return parts if depth // parts >= SPLIT_DEFAULT_DEPTH and parts <= geo["CG"] else 1


def forward_split(node: Node, ctx: BindContext, geo: Mapping[str, int], variant: Variant,
                  local: bool) -> int:
    """The reduction parts of conv2d_forward: the variant's "split", else default_split; each
    part a slice of every tap's channels, only on the plain register-blocked path (no local
    tiles), at most one part per channel (an edge shape's few channels: as many parts as
    channels)."""
    if "split" not in variant:
        return 1 if local else default_split(geo, ctx.batch, ctx.target)
    split = int(variant["split"])
    if split > 1 and local:
        raise InternalError(f"node '{node.name}': a forward pass in {split} reduction parts "
                            "needs the register-blocked path (no local tiles)")
    return max(1, min(split, geo["CG"]))


def _bind_conv2d_parts(node: Node, ctx: BindContext, geo: Mapping[str, int],
                       defines: Mapping[str, int], grid: tuple[int, int],
                       group: tuple[int, ...] | None, split: int, bias: Arg, gemm_out: Arg,
                       after: tuple[Launch, ...], work: tuple[int, ...]) -> NodeBinding:
    """conv2d_forward in `split` reduction parts along launch dim 2, each into its slice of a
    workspace, then conv2d_parts_finish adding them up in order with the epilogue: a batch-1
    layer of a few pixels (7x7: 49 GEMM rows) makes too few register blocks for the cores, and
    a part reads 1/split of the weights, which may then stay in a core's cache."""
    size = ctx.batch * geo["OH"] * geo["OW"] * geo["F"]
    parts = Workspace(len(work))
    args = (Value(node.inputs[0]), Value(node.params[0]), bias, ZEROS, parts, Int(ctx.batch))
    conv = launch("conv2d.cl", "conv2d_forward", (*grid, split),
                  args, {**defines, "SPLIT": split}, None if group is None else (*group, 1))
    vw = vector_width(geo["F"], ctx.target)
    finish_defines = {"OH": geo["OH"], "OW": geo["OW"], "F": geo["F"], "SPLIT": split,
                      "VW": vw, "HAS_BIAS": defines["HAS_BIAS"], **epilogue_act(node)}
    finish = launch("conv2d.cl", "conv2d_parts_finish", flat(size // vw),
                    (parts, bias, gemm_out, Int(ctx.batch)), finish_defines)
    return NodeBinding((conv, finish, *after), workspaces=(*work, split * size),
                       zeros=geo["CG"])


def conv2d_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """bind_conv2d_direct's main launch as a GEMM."""
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    rows = ctx.batch * geo["OH"] * geo["OW"]
    depth = geo["KH"] * geo["KW"] * geo["CG"]
    if uses_im2col(node, geo, variant, ctx.target):
        return Gemm(geo["F"], rows, depth, split=False, local=True)
    groups = node.attrs["groups"]
    return Gemm(geo["FG"], rows, depth, split=False, local=groups == 1, groups=groups)


def with_exact_rows(node: Node, ctx: BindContext, variant: Variant) -> Variant:
    """The variant, with the block whose rows divide a few-pixel output's where it sets no
    block of its own (tiling.exact_row_tile, the direct conv2d's rows_tile: its default)."""
    if "MR" in variant:
        return variant
    gemm = conv2d_gemm(node, ctx, variant)
    tile = exact_row_tile(gemm.rows, gemm.cols, ctx.target)
    return variant if tile is None else {**variant, **tile}


def _bind_conv2d_im2col(
    node: Node, ctx: BindContext, geo: Mapping[str, int], bias: Arg, variant: Variant
) -> NodeBinding:
    rows = ctx.batch * geo["OH"] * geo["OW"]
    depth = geo["KH"] * geo["KW"] * geo["C"]
    gemm_out, after, work = unfused_softmax(node, ctx, workspace=1)
    windows = Workspace(0)
    launches = (
        im2col(node.inputs[0], windows, geo, ctx.batch, ctx.target),
        matmul(
            ctx,
            windows,
            Value(node.params[0]),
            gemm_out,
            rows,
            depth,
            geo["F"],
            bias=bias,
            act=epilogue_act(node),
            variant=variant,
        ),
        *after,
    )
    return NodeBinding(launches, workspaces=(rows * depth, *work))


def bind_pool(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    defines = window_defines(node.attrs, ctx.shape(x), ctx.shape(node.name), ctx.target)
    grid = flat(ctx.numel(node.name) // defines["VW"])
    args = (Value(x), Value(node.name), Int(ctx.batch))
    return NodeBinding((launch("pool.cl", node.op, grid, args, defines),))


def bind_global_avgpool2d(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    defines = global_pool_defines(ctx.shape(x), ctx.target, wide=True)
    grid = flat(ctx.numel(node.name) // defines["VW"])
    args = (Value(x), Value(node.name), Int(ctx.batch))
    return NodeBinding((launch("pool.cl", "global_avgpool2d", grid, args, defines),))


def bind_zero_padding2d(node: Node, ctx: BindContext) -> NodeBinding:
    _, h, w, c = ctx.shape(node.inputs[0])
    _, oh, ow, _ = ctx.shape(node.name)
    (t, _), (left, _) = node.attrs["padding"]
    pad = pad_rows(node.inputs[0], node.name, ctx.batch * oh, oh=oh, h=h, pt=t, in_run=w * c,
                   out_run=ow * c, lead=left * c, target=ctx.target)
    return NodeBinding((pad,))


def bind_dense_direct(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    m, k = ctx.rows_cols(x)
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    gemm_out, after, work = unfused_softmax(node, ctx, workspace=0)
    gemm = matmul(
        ctx,
        Value(x),
        Value(node.params[0]),
        gemm_out,
        m,
        k,
        node.attrs["units"],
        bias=bias,
        act=epilogue_act(node),
        variant=ctx.variant(node),
    )
    return NodeBinding((gemm, *after), workspaces=work)


def dense_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """bind_dense_direct's GEMM."""
    m, k = ctx.rows_cols(node.inputs[0])
    return Gemm(node.attrs["units"], m, k, split=False, local=True)


def bind_batchnorm(node: Node, ctx: BindContext) -> NodeBinding:
    by_suffix = {p.rsplit("/", 1)[-1]: p for p in node.params}
    gamma = Value(by_suffix["gamma"]) if "gamma" in by_suffix else NULL
    beta = Value(by_suffix["beta"]) if "beta" in by_suffix else NULL
    rows, cols = ctx.rows_cols(node.name)
    grid, group, vw, chunks = channel_grid(ctx, rows, cols)
    args = (
        Value(node.inputs[0]),
        gamma,
        beta,
        Value(by_suffix["moving_mean"]),
        Value(by_suffix["moving_variance"]),
        Value(node.name),
        Int(rows),
        Int(cols),
        Int(chunks),
        Float(node.attrs["epsilon"]),
    )
    defines = {**affine_defines(gamma, beta), "VW": vw}
    return NodeBinding((launch("batchnorm.cl", "batchnorm", grid, args, defines, group),))


def bind_activation(node: Node, ctx: BindContext) -> NodeBinding:
    return NodeBinding((activation(node, ctx, (Value(node.inputs[0]),)),))


def bind_add(node: Node, ctx: BindContext) -> NodeBinding:
    if any(ctx.shape(v) != ctx.shape(node.name) for v in node.inputs):
        return bind_merge(node, ctx)  # a broadcast add (merge.cl)
    n = ctx.numel(node.name)
    a, b, *rest = node.inputs
    out = Value(node.name)
    launches = [elementwise_launch("elementwise.cl", "add", n, (Value(a), Value(b), out, Int(n)), ctx.target)]
    launches += [
        elementwise_launch("elementwise.cl", "accumulate", n, (Value(v), out, Int(n)), ctx.target) for v in rest
    ]
    return NodeBinding(tuple(launches))


def bind_concatenate(node: Node, ctx: BindContext) -> NodeBinding:
    out_shape = ctx.shape(node.name)
    axis = node.attrs["axis"] % len(out_shape)
    if 2 <= len(node.inputs) <= CONCAT_MAX_INPUTS:
        return NodeBinding((concat_rows(node.inputs, node.name, out_shape, axis,
                                        [ctx.shape(v)[axis] for v in node.inputs],
                                        ctx.target),))
    launches, start = [], 0
    for v in node.inputs:
        length = ctx.shape(v)[axis]
        copy = copy_block(
            v,
            node.name,
            out_shape,
            axis,
            length,
            src_axis=length,
            dst_axis=out_shape[axis],
            dst_start=start,
            target=ctx.target,
        )
        launches.append(copy)
        start += length
    return NodeBinding(tuple(launches))


BINDERS: dict[str, Binder] = {
    "input": bind_input,
    "maxpool2d": bind_pool,
    "avgpool2d": bind_pool,
    "global_avgpool2d": bind_global_avgpool2d,
    "zero_padding2d": bind_zero_padding2d,
    "flatten": bind_view,
    "dropout": bind_view,
    "batchnorm": bind_batchnorm,
    "activation": bind_activation,
    "add": bind_add,
    "concatenate": bind_concatenate,
}
