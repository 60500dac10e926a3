"""Binders of the layer ops (what a spec contains): one function per op, node -> launches."""

from __future__ import annotations

from collections.abc import Mapping
from math import prod

from cnnc.backends.opencl.launches import (
    NULL,
    ZEROS,
    Arg,
    BindContext,
    Float,
    Int,
    NodeBinding,
    Value,
    Workspace,
    launch,
)
from cnnc.backends.opencl.primitives import (
    ACT_CODES,
    conv_geometry,
    copy_block,
    epilogue_act,
    im2col,
    matmul,
    softmax_after,
    uses_im2col,
    vector_width,
    window_defines,
)
from cnnc.backends.opencl.tiling import (
    flat,
    gemm_grid,
    register_tile,
    with_local_tile,
)
from cnnc.ir.graph import Node


def bind_input(node: Node, ctx: BindContext) -> NodeBinding:
    return NodeBinding(fed=True)


def bind_view(node: Node, ctx: BindContext) -> NodeBinding:
    """Same bytes, another shape (flatten, reshape) or the identity (dropout at inference)."""
    return NodeBinding(view_of=node.inputs[0])


def bind_conv2d(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    kernel = node.params[0]
    bias = node.params[1] if node.attrs["use_bias"] else None
    geo = conv_geometry(node.attrs, ctx.shape(x), node.attrs["filters"])
    if uses_im2col(node, geo):
        return _bind_conv2d_im2col(node, ctx, geo, x, kernel, bias)
    rows = ctx.batch * geo["OH"] * geo["OW"]
    tile, local = with_local_tile(
        register_tile(geo["FG"], ctx.target), ctx.target, node.attrs["groups"] == 1
    )
    defines = {**geo, **tile, "HAS_BIAS": int(bias is not None), "ACT": epilogue_act(node)}
    softmax = node.attrs["activation"] == "softmax"
    gemm_out: Arg = Workspace(0) if softmax else Value(node.name)
    grid, group = gemm_grid(rows, geo["F"], tile, local, ctx.target)
    args = (Value(x), Value(kernel), Value(bias) if bias else NULL, ZEROS, gemm_out, Int(ctx.batch))
    launches = (
        launch("conv2d.cl", "conv2d_forward", grid, args, defines, group),
        *softmax_after(node, ctx, gemm_out, Value(node.name)),
    )
    return NodeBinding(
        launches, workspaces=(4 * ctx.numel(node.name),) if softmax else (), zeros=geo["CG"]
    )


def _bind_conv2d_im2col(
    node: Node, ctx: BindContext, geo: Mapping[str, int], x: str, kernel: str, bias: str | None
) -> NodeBinding:
    rows = ctx.batch * geo["OH"] * geo["OW"]
    depth = geo["KH"] * geo["KW"] * geo["C"]
    softmax = node.attrs["activation"] == "softmax"
    gemm_out: Arg = Workspace(1) if softmax else Value(node.name)
    launches = (
        im2col(x, Workspace(0), geo, ctx.batch),
        matmul(
            Workspace(0),
            Value(kernel),
            Value(bias) if bias else NULL,
            gemm_out,
            rows,
            depth,
            geo["F"],
            epilogue_act(node),
            ctx,
        ),
        *softmax_after(node, ctx, gemm_out, Value(node.name)),
    )
    work = (4 * rows * depth,) + ((4 * ctx.numel(node.name),) if softmax else ())
    return NodeBinding(launches, workspaces=work)


def bind_pool(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    defines = window_defines(node.attrs, ctx.shape(x), ctx.shape(node.name), ctx.target)
    return NodeBinding(
        (
            launch(
                "pool.cl",
                node.op,
                flat(ctx.numel(node.name) // defines["VW"]),
                (Value(x), Value(node.name), Int(ctx.batch)),
                defines,
            ),
        )
    )


def bind_global_avgpool2d(node: Node, ctx: BindContext) -> NodeBinding:
    n, h, w, c = ctx.shape(node.inputs[0])
    defines = {"HW": h * w, "C": c, "VW": vector_width(c, ctx.target)}
    return NodeBinding(
        (
            launch(
                "pool.cl",
                "global_avgpool2d",
                flat(n * c // defines["VW"]),
                (Value(node.inputs[0]), Value(node.name), Int(n)),
                defines,
            ),
        )
    )


def bind_dense(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    shape = ctx.shape(x)
    m, k, n = prod(shape[:-1]), shape[-1], node.attrs["units"]
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    softmax = node.attrs["activation"] == "softmax"
    gemm_out: Arg = Workspace(0) if softmax else Value(node.name)
    launches = (
        matmul(Value(x), Value(node.params[0]), bias, gemm_out, m, k, n, epilogue_act(node), ctx),
        *softmax_after(node, ctx, gemm_out, Value(node.name)),
    )
    return NodeBinding(launches, workspaces=(4 * ctx.numel(node.name),) if softmax else ())


def bind_batchnorm(node: Node, ctx: BindContext) -> NodeBinding:
    by_suffix = {p.rsplit("/", 1)[-1]: p for p in node.params}
    gamma, beta = by_suffix.get("gamma"), by_suffix.get("beta")
    n, cols = ctx.numel(node.name), ctx.shape(node.name)[-1]
    args = (
        Value(node.inputs[0]),
        Value(gamma) if gamma else NULL,
        Value(beta) if beta else NULL,
        Value(by_suffix["moving_mean"]),
        Value(by_suffix["moving_variance"]),
        Value(node.name),
        Int(n),
        Int(cols),
        Float(node.attrs["epsilon"]),
    )
    defines = {"HAS_GAMMA": int(gamma is not None), "HAS_BETA": int(beta is not None)}
    return NodeBinding((launch("batchnorm.cl", "batchnorm", flat(n), args, defines),))


def bind_activation(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    shape = ctx.shape(node.name)
    act = node.attrs["activation"]
    if act == "softmax":
        rows, cols = prod(shape[:-1]), shape[-1]
        return NodeBinding(
            (
                launch(
                    "softmax.cl",
                    "softmax",
                    flat(rows),
                    (Value(x), Value(node.name), Int(rows), Int(cols)),
                ),
            )
        )
    n = prod(shape)
    return NodeBinding(
        (
            launch(
                "elementwise.cl",
                "activation",
                flat(n),
                (Value(x), Value(node.name), Int(n)),
                {"ACT": ACT_CODES[act]},
            ),
        )
    )


def bind_add(node: Node, ctx: BindContext) -> NodeBinding:
    n = ctx.numel(node.name)
    a, b, *rest = node.inputs
    out = Value(node.name)
    launches = [launch("elementwise.cl", "add", flat(n), (Value(a), Value(b), out, Int(n)))]
    launches += [
        launch("elementwise.cl", "accumulate", flat(n), (Value(v), out, Int(n))) for v in rest
    ]
    return NodeBinding(tuple(launches))


def bind_concatenate(node: Node, ctx: BindContext) -> NodeBinding:
    out_shape = ctx.shape(node.name)
    axis = node.attrs["axis"] % len(out_shape)
    launches, start = [], 0
    for v in node.inputs:
        length = ctx.shape(v)[axis]
        launches.append(
            copy_block(v, node.name, out_shape, axis, length, length, 0, out_shape[axis], start)
        )
        start += length
    return NodeBinding(tuple(launches))
