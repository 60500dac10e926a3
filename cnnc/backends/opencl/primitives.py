"""Launch builders for the kernels that several ops share.

Matrix products (gemm.cl: matmul, matmul_tn with its split reduction, transpose), column sums
(reduce.cl), block copies (elementwise.cl), softmax after a linear layer, window copies for
im2col, and the geometry defines of convolutions and pooling windows. The binders in
bind_layers.py and bind_train.py compose these.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import prod

from cnnc.backends.opencl.launches import (
    NULL,
    Arg,
    BindContext,
    Float,
    Int,
    Launch,
    NodeBinding,
    Value,
    Workspace,
    launch,
)
from cnnc.backends.opencl.tiling import (
    Target,
    ceil_div,
    column_chunks,
    flat,
    gemm_grid,
    register_tile,
    row_groups,
    split_reduction,
    vector_width,
    with_local_tile,
)
from cnnc.ir.convpool import window_geometry
from cnnc.ir.graph import Node
from cnnc.ir.layers import pool_strides

ACT_CODES = {"linear": 0, "relu": 1, "leaky_relu": 2, "elu": 3, "sigmoid": 4, "tanh": 5}

# Up to this many input channels, a convolution copies its windows out (im2col) and runs a
# plain matrix product: with 1 channel (the fashion model's first layer) the implicit GEMM spends
# more on window bookkeeping than on arithmetic (measured ~70 GFLOP/s against ~240).
IM2COL_MAX_CHANNELS = 4


def softmax_after(node: Node, ctx: BindContext, out: Arg, into: Arg) -> tuple[Launch, ...]:
    """Softmax after a GEMM (the other activations are fused into its epilogue)."""
    if node.attrs.get("activation") != "softmax":
        return ()
    shape = ctx.shape(node.name)
    rows, cols = prod(shape[:-1]), shape[-1]
    return (launch("softmax.cl", "softmax", flat(rows), (out, into, Int(rows), Int(cols))),)


def epilogue_act(node: Node) -> int:
    act = node.attrs.get("activation", "linear")
    return 0 if act == "softmax" else ACT_CODES[act]


def matmul(
    a: Arg, b: Arg, bias: Arg, out: Arg, m: int, k: int, n: int, act: int, ctx: BindContext
) -> Launch:
    tile, local = with_local_tile(register_tile(n, ctx.target), ctx.target)
    defines = {"K": k, "N": n, **tile, "HAS_BIAS": int(bias != NULL), "ACT": act}
    grid, group = gemm_grid(m, n, tile, local, ctx.target)
    return launch("gemm.cl", "matmul", grid, (a, b, bias, out, Int(m)), defines, group)


def matmul_tn(
    a: Arg, b: Arg, out: Arg, m: int, n: int, k: int, ctx: BindContext, parts: Arg | None = None
) -> NodeBinding:
    """out[m, n] = a[k, m]^T . b[k, n], the k rows cut in parts if that helps; the partial
    products go to `parts` (default: the node's workspace 0)."""
    parts = Workspace(0) if parts is None else parts
    tile = register_tile(n, ctx.target)
    blocks = (n // (tile["VW"] * tile["NV"]), ceil_div(m, tile["MR"]))
    split = split_reduction(blocks[0] * blocks[1], k, 4 * (m + n), ctx.target)
    defines = {"M": m, "N": n, **tile}
    if split == 1:
        return NodeBinding(
            (
                launch(
                    "gemm.cl",
                    "matmul_tn",
                    (*blocks, 1),
                    (a, b, out, Int(k)),
                    defines,
                    row_groups((*blocks, 1), ctx.target),
                ),
            )
        )
    return NodeBinding(
        (
            launch(
                "gemm.cl",
                "matmul_tn",
                (*blocks, split),
                (a, b, parts, Int(k)),
                defines,
                row_groups((*blocks, split), ctx.target),
            ),
            sum_parts(parts, out, m * n, split, ctx.target),
        ),
        workspaces=(4 * split * m * n,),
    )


def transpose(src: Arg, dst: Arg, batches: int, rows: int, cols: int) -> Launch:
    return launch(
        "gemm.cl", "transpose", (rows, cols, batches), (src, dst), {"TR": rows, "TC": cols}
    )


def sum_parts(
    parts: Arg,
    out: Arg,
    cols: int,
    chunks: int,
    target: Target,
    scale: float = 1.0,
    out_offset: int = 0,
) -> Launch:
    vw = vector_width(cols, target)
    return launch(
        "reduce.cl",
        "col_sum_finish",
        flat(cols // vw),
        (parts, out, Int(cols), Int(chunks), Float(scale), Int(out_offset)),
        {"VW": vw},
    )


def column_sum(
    a: Arg,
    b: Arg,
    stats: Arg,
    eps: float,
    out: Arg,
    rows: int,
    cols: int,
    mode: int,
    ctx: BindContext,
    scale: float = 1.0,
    out_offset: int = 0,
) -> tuple[tuple[Launch, ...], int]:
    """Launches for a column sum into `out` (+ offset), and the partial-sums workspace size.

    The partials always go to Workspace(0)."""
    chunks = column_chunks(rows, cols, ctx.target)
    vw = vector_width(cols, ctx.target)
    partial = launch(
        "reduce.cl",
        "col_sum_partial",
        (cols // vw, chunks),
        (a, b, stats, Float(eps), Workspace(0), Int(rows), Int(cols), Int(chunks)),
        {"MODE": mode, "VW": vw},
        row_groups((cols // vw, chunks), ctx.target),
    )
    finish = sum_parts(Workspace(0), out, cols, chunks, ctx.target, scale, out_offset)
    return (partial, finish), 4 * chunks * cols


def copy_block(
    src: str,
    dst: str,
    shape: tuple[int, ...],
    axis: int,
    length: int,
    src_axis: int,
    src_start: int,
    dst_axis: int,
    dst_start: int,
) -> Launch:
    outer, inner = prod(shape[:axis]), prod(shape[axis + 1 :])
    args = (
        Value(src),
        Value(dst),
        Int(outer),
        Int(length),
        Int(inner),
        Int(src_axis),
        Int(src_start),
        Int(dst_axis),
        Int(dst_start),
    )
    return launch("elementwise.cl", "copy_block", flat(outer * length * inner), args)


def sum_all(src: Arg, out: Arg, n: int, scale: float) -> Launch:
    return launch("reduce.cl", "sum_all", (1,), (src, out, Int(n), Float(scale)))


def conv_geometry(attrs, in_shape: tuple[int, ...], filters: int) -> dict[str, int]:
    _, h, w, c = in_shape
    geo = window_geometry(
        (h, w), attrs["kernel_size"], attrs["strides"], attrs["padding"], attrs["dilation_rate"]
    )
    g = attrs["groups"]
    keys = ("H", "W", "KH", "KW", "SH", "SW", "DH", "DW", "OH", "OW", "PT", "PL")
    out = {k: geo[k] for k in keys}
    out.update(C=c, CG=c // g, F=filters, FG=filters // g)
    return out


def im2col(x: str, out: Arg, geo: Mapping[str, int], batch: int) -> Launch:
    rows = batch * geo["OH"] * geo["OW"]
    return launch("conv2d.cl", "im2col", flat(rows), (Value(x), out, Int(batch)), dict(geo))


def uses_im2col(node: Node, geo: Mapping[str, int]) -> bool:
    return node.attrs["groups"] == 1 and geo["C"] <= IM2COL_MAX_CHANNELS


def window_defines(
    attrs, in_shape: tuple[int, ...], out_shape: tuple[int, ...], target: Target
) -> dict:
    _, h, w, c = in_shape
    geo = window_geometry((h, w), attrs["pool_size"], pool_strides(attrs), attrs["padding"])
    assert (geo["OH"], geo["OW"]) == tuple(out_shape[1:3])
    keys = ("H", "W", "KH", "KW", "SH", "SW", "OH", "OW", "PT", "PL")
    return {"C": c, "VW": vector_width(c, target), **{k: geo[k] for k in keys}}


def rows_cols(ctx: BindContext, value: str) -> tuple[int, int]:
    shape = ctx.shape(value)
    return prod(shape[:-1]), shape[-1]
