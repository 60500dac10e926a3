"""Binders of the training graph's ops: gradients, batch statistics, dropout masks, losses and
optimizer updates; one function per op, node -> launches."""

from __future__ import annotations

from math import prod

from cnnc.backends.opencl.launches import (
    NULL,
    STEP,
    ZEROS,
    Arg,
    BindContext,
    Float,
    Int,
    NodeBinding,
    UInt,
    UpdateScalar,
    Value,
    Workspace,
    launch,
)
from cnnc.backends.opencl.primitives import (
    ACT_CODES,
    column_sum,
    conv_geometry,
    copy_block,
    im2col,
    matmul,
    matmul_tn,
    rows_cols,
    sum_all,
    sum_parts,
    transpose,
    uses_im2col,
    vector_width,
    window_defines,
)
from cnnc.backends.opencl.tiling import (
    ceil_div,
    flat,
    gemm_grid,
    register_tile,
    row_groups,
    split_reduction,
    with_local_tile,
)
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS


def bind_activation_grad(node: Node, ctx: BindContext) -> NodeBinding:
    y, dy = node.inputs
    shape = ctx.shape(node.name)
    act = node.attrs["activation"]
    if act == "softmax":
        rows, cols = prod(shape[:-1]), shape[-1]
        return NodeBinding(
            (
                launch(
                    "softmax.cl",
                    "softmax_grad",
                    flat(rows),
                    (Value(y), Value(dy), Value(node.name), Int(rows), Int(cols)),
                ),
            )
        )
    n = prod(shape)
    return NodeBinding(
        (
            launch(
                "elementwise.cl",
                "activation_grad",
                flat(n),
                (Value(y), Value(dy), Value(node.name), Int(n)),
                {"ACT": ACT_CODES[act]},
            ),
        )
    )


def bind_conv2d_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
    dy, kernel = node.inputs
    geo = conv_geometry(node.attrs, ctx.shape(node.name), node.attrs["filters"])
    rows = ctx.batch * geo["H"] * geo["W"]
    tile, local = with_local_tile(
        register_tile(geo["CG"], ctx.target), ctx.target, node.attrs["groups"] == 1
    )
    grid, group = gemm_grid(rows, geo["C"], tile, local, ctx.target)
    taps = geo["KH"] * geo["KW"]
    launches = (
        transpose(Value(kernel), Workspace(0), taps, geo["CG"], geo["F"]),
        launch(
            "conv2d.cl",
            "conv2d_grad_input",
            grid,
            (Value(dy), Workspace(0), ZEROS, Value(node.name), Int(ctx.batch)),
            {**geo, **tile},
            group,
        ),
    )
    return NodeBinding(launches, workspaces=(4 * taps * geo["CG"] * geo["F"],), zeros=geo["FG"])


def bind_conv2d_grad_kernel(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    geo = conv_geometry(node.attrs, ctx.shape(x), node.attrs["filters"])
    if uses_im2col(node, geo):
        pixels = ctx.batch * geo["OH"] * geo["OW"]
        depth = geo["KH"] * geo["KW"] * geo["C"]
        tn = matmul_tn(
            Workspace(0), Value(dy), Value(node.name), depth, geo["F"], pixels, ctx, Workspace(1)
        )
        return NodeBinding(
            (im2col(x, Workspace(0), geo, ctx.batch), *tn.launches),
            workspaces=(4 * pixels * depth, *tn.workspaces),
        )
    rows = geo["KH"] * geo["KW"] * geo["CG"]
    pixels = ctx.batch * geo["OH"] * geo["OW"]
    tile = register_tile(geo["FG"], ctx.target)
    blocks = (geo["F"] // (tile["VW"] * tile["NV"]), ceil_div(rows, tile["MR"]))
    split = split_reduction(blocks[0] * blocks[1], pixels, 4 * (geo["C"] + geo["F"]), ctx.target)
    defines = {**geo, **tile, "TAP_ROWS": int(geo["CG"] % tile["MR"] == 0)}
    batch = Int(ctx.batch)
    if split == 1:
        return NodeBinding(
            (
                launch(
                    "conv2d.cl",
                    "conv2d_grad_kernel",
                    (*blocks, 1),
                    (Value(x), Value(dy), Value(node.name), batch),
                    defines,
                    row_groups((*blocks, 1), ctx.target),
                ),
            )
        )
    size = rows * geo["F"]
    return NodeBinding(
        (
            launch(
                "conv2d.cl",
                "conv2d_grad_kernel",
                (*blocks, split),
                (Value(x), Value(dy), Workspace(0), batch),
                defines,
                row_groups((*blocks, split), ctx.target),
            ),
            sum_parts(Workspace(0), Value(node.name), size, split, ctx.target),
        ),
        workspaces=(4 * split * size,),
    )


def bind_bias_grad(node: Node, ctx: BindContext) -> NodeBinding:
    dy = node.inputs[0]
    cols = ctx.shape(node.name)[-1]
    rows = ctx.numel(dy) // cols
    launches, work = column_sum(Value(dy), NULL, NULL, 0.0, Value(node.name), rows, cols, 0, ctx)
    return NodeBinding(launches, workspaces=(work,))


def bind_dense_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
    dy, kernel = node.inputs
    k_in, units = ctx.shape(kernel)
    m = ctx.numel(dy) // units
    launches = (
        transpose(Value(kernel), Workspace(0), 1, k_in, units),
        matmul(Value(dy), Workspace(0), NULL, Value(node.name), m, units, k_in, 0, ctx),
    )
    return NodeBinding(launches, workspaces=(4 * k_in * units,))


def bind_dense_grad_kernel(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    k_in, units = ctx.shape(node.name)
    rows = ctx.numel(x) // k_in
    return matmul_tn(Value(x), Value(dy), Value(node.name), k_in, units, rows, ctx)


def bind_maxpool2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    d = window_defines(node.attrs, ctx.shape(x), ctx.shape(dy), ctx.target)
    args = (Value(x), Value(dy), Value(node.name), Int(ctx.batch))
    if d["SH"] < d["KH"] or d["SW"] < d["KW"]:  # overlapping windows: gather
        return NodeBinding(
            (launch("pool.cl", "maxpool2d_grad", flat(ctx.numel(x) // d["VW"]), args, d),)
        )
    # Disjoint windows: scatter from each window, after zeroing the cells no window covers.
    covered = (
        d["SH"] == d["KH"]
        and d["SW"] == d["KW"]
        and d["OH"] * d["SH"] - d["PT"] >= d["H"]
        and d["OW"] * d["SW"] - d["PL"] >= d["W"]
    )
    n = ctx.numel(x)
    zero = (
        () if covered else (launch("elementwise.cl", "zero", flat(n), (Value(node.name), Int(n))),)
    )
    return NodeBinding(
        zero
        + (launch("pool.cl", "maxpool2d_grad_scatter", flat(ctx.numel(dy) // d["VW"]), args, d),)
    )


def bind_avgpool2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    dy = node.inputs[0]
    d = window_defines(node.attrs, ctx.shape(node.name), ctx.shape(dy), ctx.target)
    return NodeBinding(
        (
            launch(
                "pool.cl",
                "avgpool2d_grad",
                flat(ctx.numel(node.name) // d["VW"]),
                (Value(dy), Value(node.name), Int(ctx.batch)),
                d,
            ),
        )
    )


def bind_global_avgpool2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    n, h, w, c = ctx.shape(node.name)
    defines = {"HW": h * w, "C": c, "VW": vector_width(c, ctx.target)}
    return NodeBinding(
        (
            launch(
                "pool.cl",
                "global_avgpool2d_grad",
                flat(n * h * w * c // defines["VW"]),
                (Value(node.inputs[0]), Value(node.name), Int(n)),
                defines,
            ),
        )
    )


def bind_slice(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    in_shape = ctx.shape(x)
    axis = node.attrs["axis"] % len(in_shape)
    start, stop = node.attrs["start"], node.attrs["stop"]
    return NodeBinding(
        (
            copy_block(
                x, node.name, in_shape, axis, stop - start, in_shape[axis], start, stop - start, 0
            ),
        )
    )


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
        Float(rate),
        Float(1.0 - rate),
    )
    return NodeBinding((launch("random.cl", "dropout", flat(n), args),))


def bind_batchnorm_stats(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    cols = ctx.shape(node.name)[-1]
    rows = ctx.numel(x) // cols
    out = Value(node.name)
    means, work = column_sum(Value(x), NULL, NULL, 0.0, out, rows, cols, 0, ctx, 1.0 / rows)
    variances, _ = column_sum(
        Value(x), NULL, out, 0.0, out, rows, cols, 1, ctx, 1.0 / rows, out_offset=cols
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
    n, cols = ctx.numel(node.name), ctx.shape(node.name)[-1]
    args = (
        Value(x),
        Value(stats),
        gamma,
        beta,
        Value(node.name),
        Int(n),
        Int(cols),
        Float(node.attrs["epsilon"]),
    )
    defines = {"HAS_GAMMA": int(gamma != NULL), "HAS_BETA": int(beta != NULL)}
    return NodeBinding((launch("batchnorm.cl", "batchnorm_train", flat(n), args, defines),))


def bind_batchnorm_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
    x, stats, dy = node.inputs[:3]
    gamma = Value(node.inputs[3]) if len(node.inputs) > 3 else NULL
    n, cols = ctx.numel(node.name), ctx.shape(node.name)[-1]
    rows = n // cols
    eps = node.attrs["epsilon"]
    sums = Workspace(1)
    dy_sum, work = column_sum(Value(dy), NULL, NULL, eps, sums, rows, cols, 0, ctx)
    dyx_sum, _ = column_sum(
        Value(x), Value(dy), Value(stats), eps, sums, rows, cols, 2, ctx, out_offset=cols
    )
    args = (
        Value(x),
        Value(stats),
        Value(dy),
        gamma,
        sums,
        Value(node.name),
        Int(n),
        Int(cols),
        Float(eps),
        Float(1.0 / rows),
    )
    final = launch(
        "batchnorm.cl",
        "batchnorm_grad_input",
        flat(n),
        args,
        {"HAS_GAMMA": int(gamma != NULL), "HAS_BETA": 0},
    )
    return NodeBinding(dy_sum + dyx_sum + (final,), workspaces=(work, 4 * 2 * cols))


def bind_batchnorm_grad_gamma(node: Node, ctx: BindContext) -> NodeBinding:
    x, stats, dy = node.inputs
    cols = ctx.shape(node.name)[-1]
    rows = ctx.numel(x) // cols
    launches, work = column_sum(
        Value(x),
        Value(dy),
        Value(stats),
        node.attrs["epsilon"],
        Value(node.name),
        rows,
        cols,
        2,
        ctx,
    )
    return NodeBinding(launches, workspaces=(work,))


def bind_row_loss(node: Node, ctx: BindContext) -> NodeBinding:
    """A loss: one value per row into a workspace, then their mean."""
    pred, target = node.inputs
    rows, cols = rows_cols(ctx, pred)
    defines = {"SPARSE": int(bool(node.attrs.get("sparse", False)))}
    per_row = launch(
        "softmax.cl",
        node.op,
        flat(rows),
        (Value(pred), Value(target), Workspace(0), Int(rows), Int(cols)),
        defines,
    )
    scale = 1.0 / (rows * cols) if node.op == "mean_squared_error" else 1.0 / rows
    return NodeBinding(
        (per_row, sum_all(Workspace(0), Value(node.name), rows, scale)), workspaces=(4 * rows,)
    )


def bind_row_loss_grad(node: Node, ctx: BindContext) -> NodeBinding:
    pred, target = node.inputs
    rows, cols = rows_cols(ctx, pred)
    defines = {"SPARSE": int(bool(node.attrs.get("sparse", False)))}
    return NodeBinding(
        (
            launch(
                "softmax.cl",
                node.op,
                flat(rows),
                (
                    Value(pred),
                    Value(target),
                    Value(node.name),
                    Int(rows),
                    Int(cols),
                    Float(1.0 / rows),
                ),
                defines,
            ),
        )
    )


def bind_mean_squared_error_grad(node: Node, ctx: BindContext) -> NodeBinding:
    pred, target = node.inputs
    n = ctx.numel(pred)
    return NodeBinding(
        (
            launch(
                "softmax.cl",
                "mean_squared_error_grad",
                flat(n),
                (Value(pred), Value(target), Value(node.name), Int(n), Float(1.0 / n)),
            ),
        )
    )


def bind_moving_average_update(node: Node, ctx: BindContext) -> NodeBinding:
    moving, stats = node.inputs
    n = ctx.numel(moving)
    args = (
        Value(moving),
        Value(stats),
        Int(n),
        Int(node.attrs["index"]),
        Float(node.attrs["momentum"]),
    )
    return NodeBinding((launch("optimizer.cl", "moving_average_update", flat(n), args),))


def bind_optimizer_update(node: Node, ctx: BindContext) -> NodeBinding:
    """sgd/adam/nadam: the state tensors, the count, then the per-step scalars."""
    n = ctx.numel(node.inputs[0])
    count = len(OPS[node.op].scalars(node.attrs, 0, 1.0))
    tensors = [Value(v) for v in node.inputs]
    defines: dict[str, int] = {}
    if node.op == "sgd_update":
        momentum = len(node.inputs) > 2
        defines = {"MOMENTUM": int(momentum), "NESTEROV": int(node.attrs["nesterov"])}
        if not momentum:
            tensors.append(NULL)
    args = (*tensors, Int(n), *(UpdateScalar(i) for i in range(count)))
    return NodeBinding((launch("optimizer.cl", node.op, flat(n), args, defines),))
