"""Binders of the gradient ops (cnnc/ir/gradients.py): node -> launches, one function per op,
and their table `BINDERS`, keyed by op name. The convolution and dense gradients have several
algorithms, registered in algorithms.py (which binds them): their direct ones, the phases
binding's entry, and the GEMMs those launch, are here."""

from __future__ import annotations

from collections.abc import Mapping

from cnnc.backends.opencl.launches import (
    NULL,
    STEP,
    ZEROS,
    Arg,
    BindContext,
    Binder,
    FirstIndex,
    Float,
    Int,
    NodeBinding,
    UInt,
    Value,
    Workspace,
    bind_view,
    elementwise_launch,
    launch,
)
from cnnc.backends.opencl.primitives import (
    SUM_B_XHAT,
    activation,
    affine_defines,
    batchnorm_grad_apply,
    batchnorm_grad_sums,
    channel_grid,
    channel_sum_chunks,
    column_sum,
    conv_geometry,
    copy_block,
    epilogue_act,
    global_pool_defines,
    im2col,
    matmul,
    matmul_tn,
    transpose,
    uses_im2col,
    window_defines,
    with_parts_summed,
)
from cnnc.backends.opencl.strided_grad import bind_conv2d_grad_input_phases, phases_apply
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import (
    block_grid,
    flat,
    gemm_grid,
    row_groups,
    tuned_row_groups,
    tuned_split,
    tuned_tile,
    vector_width,
    with_local_tile,
)
from cnnc.backends.opencl.tunable import Gemm, Variant
from cnnc.ir.graph import Node

# The most work-items of one part's work-group under SYNC_STEPS (pocl runs a group's items one
# after another on one core, between its barriers).
SYNC_GROUP_ITEMS = 256
SYNC_FORM_STEPS = 64  # pixels a kernel gradient's work-group takes together (sync_steps)


def bind_activation_grad(node: Node, ctx: BindContext) -> NodeBinding:
    v, dy = node.inputs  # y, or x for a parameterised relu
    return NodeBinding((activation(node, ctx, (Value(v), Value(dy)), grad=True),))


def bind_conv2d_grad_input_direct(node: Node, ctx: BindContext) -> NodeBinding:
    """dx as the implicit GEMM of dy and the transposed kernel, every tap of every pixel."""
    dy, kernel = node.inputs
    geo = conv_geometry(node.attrs, ctx.shape(node.name))
    variant = ctx.variant(node)
    gemm = conv2d_grad_input_gemm(node, ctx, variant)
    tile, local = with_local_tile(
        tuned_tile(gemm.cols, ctx.target, variant),
        ctx.target,
        gemm.local and bool(variant.get("local", 1)),
    )
    grid, group = gemm_grid(gemm.rows, geo["C"], tile, local, ctx.target, variant)
    taps = geo["KH"] * geo["KW"]
    kernel_t = Workspace(0)
    args = (Value(dy), kernel_t, ZEROS, Value(node.name), Int(ctx.batch))
    # A parameter's transpose (a transposed convolution's forward) depends on the weights only.
    once = kernel in ctx.graph.state_map
    launches = (
        transpose(Value(kernel), kernel_t, taps, geo["CG"], geo["F"], once=once),
        launch("conv2d.cl", "conv2d_grad_input", grid, args, {**geo, **tile}, group),
    )
    return NodeBinding(launches, workspaces=(taps * geo["CG"] * geo["F"],), zeros=geo["FG"],
                       constants=(0,) if once else ())


def bind_conv2d_grad_input_by_phases(node: Node, ctx: BindContext) -> NodeBinding:
    """A strided convolution's dx, each pixel's phase with its own taps only (strided_grad.py)."""
    geo = conv_geometry(node.attrs, ctx.shape(node.name))
    return bind_conv2d_grad_input_phases(node, ctx, geo, ctx.variant(node))


def strided(node: Node, ctx: BindContext) -> bool:
    """Whether phases save a convolution's input gradient work (a stride above 1)."""
    return phases_apply(conv_geometry(node.attrs, ctx.shape(node.name)))


def conv2d_grad_input_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The input gradient's GEMM, directly or by phases (the same columns and sums)."""
    geo = conv_geometry(node.attrs, ctx.shape(node.name))
    rows = ctx.batch * geo["H"] * geo["W"]
    depth = geo["KH"] * geo["KW"] * geo["FG"]
    groups = node.attrs["groups"]
    return Gemm(geo["CG"], rows, depth, split=False, local=groups == 1, groups=groups)


def bind_conv2d_grad_kernel_direct(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    out = Value(node.name)
    geo = conv_geometry(node.attrs, ctx.shape(x))
    pixels = ctx.batch * geo["OH"] * geo["OW"]
    if uses_im2col(node, geo, ctx.variant(node)):
        depth = geo["KH"] * geo["KW"] * geo["C"]
        windows = Workspace(0)
        tn = matmul_tn(ctx, windows, Value(dy), out, depth, geo["F"], pixels, Workspace(1),
                       variant=ctx.variant(node))
        return NodeBinding(
            (im2col(x, windows, geo, ctx.batch, ctx.target), *tn.launches),
            workspaces=(pixels * depth, *tn.workspaces),
        )
    variant = ctx.variant(node)
    gemm = conv2d_grad_kernel_gemm(node, ctx, variant)
    tile = tuned_tile(gemm.cols, ctx.target, variant)
    blocks = block_grid(gemm.rows, geo["F"], tile)
    split = tuned_split(blocks[0] * blocks[1], gemm.reduction, gemm.step_bytes, ctx.target,
                        variant)
    grid = (*blocks, split)
    parts = Workspace(0)
    args = (Value(x), Value(dy), out if split == 1 else parts, Int(ctx.batch))
    defines = {**geo, **tile, "TAP_ROWS": int(geo["CG"] % tile["MR"] == 0)}
    group = tuned_row_groups(grid, ctx.target, variant)
    steps = sync_steps(geo, ctx, variant)
    if steps and part_group(grid, ctx.target) is not None:
        group = part_group(grid, ctx.target)
        defines["SYNC_STEPS"] = steps
    main = launch("conv2d.cl", "conv2d_grad_kernel", grid, args, defines, group)
    return with_parts_summed(main, parts, out, gemm.rows * geo["F"], ctx.target)


def skips_pixels(geo: Mapping[str, int]) -> bool:
    """Whether a convolution's stride skips input pixels."""
    return geo["SH"] > 1 or geo["SW"] > 1


def sync_steps(geo: Mapping[str, int], ctx: BindContext, variant: Variant) -> int:
    """The pixels a direct kernel gradient's work-group takes together (0: none): the variant's,
    else SYNC_FORM_STEPS for a strided convolution on a CPU (algorithms._grad_kernel_forms'
    figures)."""
    if "sync" in variant:
        return int(variant["sync"])
    return SYNC_FORM_STEPS if ctx.target.kind == "cpu" and skips_pixels(geo) else 0


def part_group(grid: tuple[int, int, int], target: Target) -> tuple[int, int, int] | None:
    """A work-group of one reduction part's blocks (conv2d.cl's SYNC_STEPS): every column block
    of as many row blocks as divide the rows and fit the device's work-group, at most
    SYNC_GROUP_ITEMS work-items (None: one row block's column blocks do not fit)."""
    rows, cols, _ = grid
    if cols > SYNC_GROUP_ITEMS or not target.limits.group_fits((1, cols, 1)):
        return None
    best = 1
    for r in range(1, rows + 1):
        if (rows % r == 0 and r * cols <= SYNC_GROUP_ITEMS
                and target.limits.group_fits((r, cols, 1))):
            best = r
    return (best, cols, 1)


def conv2d_grad_kernel_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """bind_conv2d_grad_kernel_direct's main launch as a GEMM: rows the taps' input channels,
    the reduction over every output pixel, split into parts added up after."""
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    pixels = ctx.batch * geo["OH"] * geo["OW"]
    rows = geo["KH"] * geo["KW"] * geo["CG"]
    if uses_im2col(node, geo, variant):
        step = 4 * (geo["KH"] * geo["KW"] * geo["C"] + geo["F"])
        return Gemm(geo["F"], rows, pixels, split=True, local=False, step_bytes=step)
    # A step is one output pixel: its dy, and the input pixels its taps add to a part's reads:
    # one for a stride of 1, up to SH x SW for a strided one (a 3x3 stride-2 window moves two
    # pixels a step, and its taps read them all; a 1x1 stride-2 one reads one and skips three).
    spanned = min(geo["KH"], geo["SH"]) * min(geo["KW"], geo["SW"])
    step = 4 * (spanned * geo["C"] + geo["F"])
    groups = node.attrs["groups"]
    return Gemm(geo["FG"], rows, pixels, split=True, local=False, step_bytes=step,
                groups=groups)


def bind_bias_grad(node: Node, ctx: BindContext) -> NodeBinding:
    dy = node.inputs[0]
    rows, cols = ctx.rows_cols(dy)
    launches, work = column_sum(ctx, Value(dy), Value(node.name), rows, cols)
    return NodeBinding(launches, workspaces=(work,))


def bind_dense_grad_input_direct(node: Node, ctx: BindContext) -> NodeBinding:
    dy, kernel = node.inputs
    k_in, units = ctx.shape(kernel)
    m = ctx.numel(dy) // units
    kernel_t = Workspace(0)
    launches = (
        transpose(Value(kernel), kernel_t, 1, k_in, units),
        matmul(ctx, Value(dy), kernel_t, Value(node.name), m, units, k_in,
               variant=ctx.variant(node)),
    )
    return NodeBinding(launches, workspaces=(k_in * units,))


def dense_grad_input_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    k_in, units = ctx.shape(node.inputs[1])
    return Gemm(k_in, ctx.numel(node.inputs[0]) // units, units, split=False, local=True)


def bind_dense_grad_kernel_direct(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    k_in, units = ctx.shape(node.name)
    rows = ctx.numel(x) // k_in
    return matmul_tn(ctx, Value(x), Value(dy), Value(node.name), k_in, units, rows, Workspace(0),
                     variant=ctx.variant(node))


def dense_grad_kernel_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """x^T dy: rows the inputs, columns the units, the reduction over the batch (split)."""
    k_in, units = ctx.shape(node.name)
    rows = ctx.numel(node.inputs[0]) // k_in
    return Gemm(units, k_in, rows, split=True, local=False, step_bytes=4 * (k_in + units))


def bind_maxpool2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    d = window_defines(node.attrs, ctx.shape(x), ctx.shape(dy), ctx.target)
    args = (Value(x), Value(dy), Value(node.name), Int(ctx.batch))
    if d["SH"] < d["KH"] or d["SW"] < d["KW"] or d.get("DH", 1) > 1 or d.get("DW", 1) > 1:
        # overlapping or dilated windows: gather
        grid = flat(ctx.numel(x) // d["VW"])
        return NodeBinding((launch("pool.cl", "maxpool2d_grad", grid, args, d),))
    # Disjoint windows: scatter from each window, after zeroing the cells no window covers.
    scatter = launch("pool.cl", "maxpool2d_grad_scatter", flat(ctx.numel(dy) // d["VW"]), args, d)
    covered = (
        d["SH"] == d["KH"]
        and d["SW"] == d["KW"]
        and d["OH"] * d["SH"] - d["PT"] >= d["H"]
        and d["OW"] * d["SW"] - d["PL"] >= d["W"]
    )
    if covered:
        return NodeBinding((scatter,))
    n = ctx.numel(x)
    zero = elementwise_launch("elementwise.cl", "zero", n, (Value(node.name), Int(n)), ctx.target)
    return NodeBinding((zero, scatter))


def bind_avgpool2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    dy = node.inputs[0]
    d = window_defines(node.attrs, ctx.shape(node.name), ctx.shape(dy), ctx.target)
    grid = flat(ctx.numel(node.name) // d["VW"])
    args = (Value(dy), Value(node.name), Int(ctx.batch))
    return NodeBinding((launch("pool.cl", "avgpool2d_grad", grid, args, d),))


def bind_global_avgpool2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    defines = global_pool_defines(ctx.shape(node.name), ctx.target)
    grid = flat(ctx.numel(node.name) // defines["VW"])
    args = (Value(node.inputs[0]), Value(node.name), Int(ctx.batch))
    return NodeBinding((launch("pool.cl", "global_avgpool2d_grad", grid, args, defines),))


def bind_excite_grad(node: Node, ctx: BindContext) -> NodeBinding:
    """dm * gate + dpool / (H*W): one work-item per position, its channels VW at a time."""
    defines = global_pool_defines(ctx.shape(node.name), ctx.target)
    positions = ctx.numel(node.name) // defines["C"]
    args = (*(Value(v) for v in node.inputs), Value(node.name), Int(ctx.batch))
    return NodeBinding((launch("excite.cl", "excite_grad", flat(positions), args, defines),))


def bind_slice(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    in_shape = ctx.shape(x)
    axis = node.attrs["axis"] % len(in_shape)
    start, stop = node.attrs["start"], node.attrs["stop"]
    copy = copy_block(
        x,
        node.name,
        in_shape,
        axis,
        stop - start,
        src_axis=in_shape[axis],
        src_start=start,
        dst_axis=stop - start,
        target=ctx.target,
    )
    return NodeBinding((copy,))


def bind_dropout_mask(node: Node, ctx: BindContext) -> NodeBinding:
    """dropout_train on x and dropout_grad on dy: the same kernel, the same mask."""
    n = ctx.numel(node.name)
    rate = node.attrs["rate"]
    args = (
        Value(node.inputs[0]),
        Value(node.name),
        Int(n),
        UInt(node.attrs["seed"] & 0xFFFFFFFF),
        STEP,
        FirstIndex(n // ctx.batch),
        Float(rate),
        Float(1.0 - rate),
    )
    return NodeBinding((elementwise_launch("random.cl", "dropout", n, args, ctx.target),))


def bind_batchnorm_stats(node: Node, ctx: BindContext) -> NodeBinding:
    """[mean; biased variance] per channel in one pass over x: each chunk of rows' sum and
    squared deviations about its own mean, the chunks combined exactly after (reduce.cl's
    batch_stats_partial and batch_stats_finish). Two column sums, the second about the first's
    mean, read x twice and launched four kernels."""
    x = node.inputs[0]
    rows, cols = ctx.rows_cols(x)
    chunks = channel_sum_chunks(rows, cols, ctx.target)
    vw = vector_width(cols, ctx.target)
    grid = (cols // vw, chunks)
    sizes = (Int(rows), Int(cols), Int(chunks))
    partial = launch("reduce.cl", "batch_stats_partial", grid, (Value(x), Workspace(0), *sizes),
                     {"VW": vw}, row_groups(grid, ctx.target, across=0))
    finish = launch("reduce.cl", "batch_stats_finish", flat(cols // vw),
                    (Workspace(0), Value(node.name), *sizes), {"VW": vw})
    return NodeBinding((partial, finish), workspaces=(2 * chunks * cols,))


def _bn_inputs(node: Node, first: int) -> tuple[Arg, Arg]:
    """(gamma, beta) among a batch-norm training op's inputs from position `first` on."""
    rest = list(node.inputs[first:])
    gamma = Value(rest.pop(0)) if node.attrs["scale"] and rest else NULL
    beta = Value(rest.pop(0)) if node.attrs["center"] and rest else NULL
    return gamma, beta


def bind_batchnorm_train(node: Node, ctx: BindContext) -> NodeBinding:
    x, stats = node.inputs[:2]
    gamma, beta = _bn_inputs(node, 2)
    rows, cols = ctx.rows_cols(node.name)
    grid, group, vw, chunks = channel_grid(ctx, rows, cols)
    args = (Value(x), Value(stats), gamma, beta, Value(node.name), Int(rows), Int(cols),
            Int(chunks), Float(node.attrs["epsilon"]))
    defines = {**affine_defines(gamma, beta), "VW": vw, **epilogue_act(node)}
    return NodeBinding((launch("batchnorm.cl", "batchnorm_train", grid, args, defines, group),))


def bind_batchnorm_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
    x, stats, dy = node.inputs[:3]
    gamma = Value(node.inputs[3]) if len(node.inputs) > 3 else NULL
    sums = Workspace(1)  # [sum(dy); sum(dy * xhat)] per channel
    reductions, work = batchnorm_grad_sums(node, ctx, sums)
    final = batchnorm_grad_apply(ctx, x, stats, dy, gamma, sums, Value(node.name),
                                 node.attrs["epsilon"])
    return NodeBinding(reductions + (final,), workspaces=(work, 2 * ctx.shape(x)[-1]))


def bind_batchnorm_grad_gamma(node: Node, ctx: BindContext) -> NodeBinding:
    x, stats, dy = node.inputs
    rows, cols = ctx.rows_cols(x)
    launches, work = column_sum(
        ctx,
        Value(x),
        Value(node.name),
        rows,
        cols,
        mode=SUM_B_XHAT,
        b=Value(dy),
        stats=Value(stats),
        eps=node.attrs["epsilon"],
    )
    return NodeBinding(launches, workspaces=(work,))


BINDERS: dict[str, Binder] = {
    "activation_grad": bind_activation_grad,
    "bias_grad": bind_bias_grad,
    "maxpool2d_grad": bind_maxpool2d_grad,
    "avgpool2d_grad": bind_avgpool2d_grad,
    "global_avgpool2d_grad": bind_global_avgpool2d_grad,
    "excite_grad": bind_excite_grad,
    "view": bind_view,
    "slice": bind_slice,
    "dropout_train": bind_dropout_mask,
    "dropout_grad": bind_dropout_mask,
    "batchnorm_stats": bind_batchnorm_stats,
    "batchnorm_train": bind_batchnorm_train,
    "batchnorm_grad_input": bind_batchnorm_grad_input,
    "batchnorm_grad_gamma": bind_batchnorm_grad_gamma,
}
