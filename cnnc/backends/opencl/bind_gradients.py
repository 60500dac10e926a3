"""Binders of the gradient ops (cnnc/ir/gradients.py): node -> launches, one function per op,
and their table `BINDERS`, keyed by op name."""

from __future__ import annotations

from dataclasses import replace

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
    SUM_SQUARED_DEVIATION,
    activation,
    affine_defines,
    batchnorm_grad_apply,
    batchnorm_grad_sums,
    channel_grid,
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
from cnnc.backends.opencl.tiling import (
    block_grid,
    flat,
    gemm_grid,
    tuned_row_groups,
    tuned_split,
    tuned_tile,
    with_local_tile,
)
from cnnc.backends.opencl.winograd import bind_conv2d_grad_input_winograd
from cnnc.ir.graph import Node
from cnnc.ir.layers import depthwise_as_conv2d


def bind_activation_grad(node: Node, ctx: BindContext) -> NodeBinding:
    v, dy = node.inputs  # y, or x for a parameterised relu
    return NodeBinding((activation(node, ctx, (Value(v), Value(dy)), grad=True),))


def bind_conv2d_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
    dy, kernel = node.inputs
    geo = conv_geometry(node.attrs, ctx.shape(node.name))
    v = ctx.variant(node)
    algo = v.get("algo", "phases" if phases_apply(geo) else "direct")
    if algo == "winograd":
        return bind_conv2d_grad_input_winograd(node, ctx, geo, m=v.get("wino_m", 4))
    if algo == "phases":  # strided: the taps of each pixel's phase only (strided_grad.py)
        return bind_conv2d_grad_input_phases(node, ctx, geo, v)
    rows = ctx.batch * geo["H"] * geo["W"]
    variant = ctx.variant(node)
    tile, local = with_local_tile(
        tuned_tile(geo["CG"], ctx.target, variant),
        ctx.target,
        node.attrs["groups"] == 1 and bool(variant.get("local", 1)),
    )
    grid, group = gemm_grid(rows, geo["C"], tile, local, ctx.target, variant)
    taps = geo["KH"] * geo["KW"]
    kernel_t = Workspace(0)
    args = (Value(dy), kernel_t, ZEROS, Value(node.name), Int(ctx.batch))
    launches = (
        transpose(Value(kernel), kernel_t, taps, geo["CG"], geo["F"]),
        launch("conv2d.cl", "conv2d_grad_input", grid, args, {**geo, **tile}, group),
    )
    return NodeBinding(launches, workspaces=(taps * geo["CG"] * geo["F"],), zeros=geo["FG"])


def bind_conv2d_grad_kernel(node: Node, ctx: BindContext) -> NodeBinding:
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
            (im2col(x, windows, geo, ctx.batch), *tn.launches),
            workspaces=(pixels * depth, *tn.workspaces),
        )
    rows = geo["KH"] * geo["KW"] * geo["CG"]
    variant = ctx.variant(node)
    tile = tuned_tile(geo["FG"], ctx.target, variant)
    blocks = block_grid(rows, geo["F"], tile)
    step_bytes = 4 * (geo["C"] + geo["F"])
    split = tuned_split(blocks[0] * blocks[1], pixels, step_bytes, ctx.target, variant)
    grid = (*blocks, split)
    parts = Workspace(0)
    args = (Value(x), Value(dy), out if split == 1 else parts, Int(ctx.batch))
    defines = {**geo, **tile, "TAP_ROWS": int(geo["CG"] % tile["MR"] == 0)}
    main = launch(
        "conv2d.cl",
        "conv2d_grad_kernel",
        grid,
        args,
        defines,
        tuned_row_groups(grid, ctx.target, variant),
    )
    return with_parts_summed(main, parts, out, rows * geo["F"], ctx.target)


def _depthwise_as_conv2d(node: Node) -> Node:
    """The grouped conv2d gradient node a depthwise one is (see bind_depthwise_conv2d)."""
    shape = node.attrs["input_shape"]
    attrs = depthwise_as_conv2d(node.attrs, shape[-1]).replace(input_shape=shape)
    op = node.op.replace("depthwise_conv2d", "conv2d")
    return replace(node, op=op, attrs=attrs)


def bind_depthwise_conv2d_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
    return bind_conv2d_grad_input(_depthwise_as_conv2d(node), ctx)


def bind_depthwise_conv2d_grad_kernel(node: Node, ctx: BindContext) -> NodeBinding:
    return bind_conv2d_grad_kernel(_depthwise_as_conv2d(node), ctx)


def bind_bias_grad(node: Node, ctx: BindContext) -> NodeBinding:
    dy = node.inputs[0]
    rows, cols = ctx.rows_cols(dy)
    launches, work = column_sum(ctx, Value(dy), Value(node.name), rows, cols)
    return NodeBinding(launches, workspaces=(work,))


def bind_dense_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
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


def bind_dense_grad_kernel(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    k_in, units = ctx.shape(node.name)
    rows = ctx.numel(x) // k_in
    return matmul_tn(ctx, Value(x), Value(dy), Value(node.name), k_in, units, rows, Workspace(0),
                     variant=ctx.variant(node))


def bind_maxpool2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    d = window_defines(node.attrs, ctx.shape(x), ctx.shape(dy), ctx.target)
    args = (Value(x), Value(dy), Value(node.name), Int(ctx.batch))
    if d["SH"] < d["KH"] or d["SW"] < d["KW"]:  # overlapping windows: gather
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
    """[mean; biased variance] per channel: two column sums, the second about the first."""
    x = node.inputs[0]
    rows, cols = ctx.rows_cols(x)
    out = Value(node.name)
    means, work = column_sum(ctx, Value(x), out, rows, cols, scale=1.0 / rows)
    variances, _ = column_sum(
        ctx,
        Value(x),
        out,
        rows,
        cols,
        mode=SUM_SQUARED_DEVIATION,
        stats=out,
        scale=1.0 / rows,
        out_offset=cols,
    )
    return NodeBinding(means + variances, workspaces=(work,))


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
    "conv2d_grad_input": bind_conv2d_grad_input,
    "conv2d_grad_kernel": bind_conv2d_grad_kernel,
    "depthwise_conv2d_grad_input": bind_depthwise_conv2d_grad_input,
    "depthwise_conv2d_grad_kernel": bind_depthwise_conv2d_grad_kernel,
    "bias_grad": bind_bias_grad,
    "dense_grad_input": bind_dense_grad_input,
    "dense_grad_kernel": bind_dense_grad_kernel,
    "maxpool2d_grad": bind_maxpool2d_grad,
    "avgpool2d_grad": bind_avgpool2d_grad,
    "global_avgpool2d_grad": bind_global_avgpool2d_grad,
    "reshape": bind_view,
    "slice": bind_slice,
    "dropout_train": bind_dropout_mask,
    "dropout_grad": bind_dropout_mask,
    "batchnorm_stats": bind_batchnorm_stats,
    "batchnorm_train": bind_batchnorm_train,
    "batchnorm_grad_input": bind_batchnorm_grad_input,
    "batchnorm_grad_gamma": bind_batchnorm_grad_gamma,
}
