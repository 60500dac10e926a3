"""Launch builders for the kernels that several ops share.

Activations and softmax (elementwise.cl, softmax.cl), matrix products (gemm.cl: matmul, matmul_tn
with its split reduction, transpose), column sums (reduce.cl), block copies (elementwise.cl),
window copies for im2col, and the geometry defines of convolutions and pooling windows. The
binders of every op group (bind_*.py) compose these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import prod
from typing import Any

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
    elementwise_launch,
    launch,
)
from cnnc.backends.opencl.target import GRID_GROUPS, Target
from cnnc.backends.opencl.tiling import (
    block_grid,
    column_chunks,
    elements_per_item,
    flat,
    gemm_grid,
    row_groups,
    run_grid,
    run_vector,
    tuned_row_groups,
    tuned_split,
    tuned_tile,
    vector_width,
    with_local_tile,
)
from cnnc.errors import InternalError
from cnnc.intmath import ceil_div
from cnnc.ir.activations import ACTIVATIONS, kernel_defines, parameters
from cnnc.ir.args import Attrs
from cnnc.ir.convpool import pool_attrs_geometry, pool_is_onnx, window_geometry
from cnnc.ir.graph import Node

# Up to this many input channels, a convolution copies its windows out (im2col) and runs a
# plain matrix product: with 1 channel (the fashion model's first layer) the implicit GEMM spends
# more on window bookkeeping than on arithmetic (measured ~70 GFLOP/s against ~240).
IM2COL_MAX_CHANNELS = 4

# What reduce.cl's col_sum_partial adds up per column (its -D MODE).
SUM_A = 0  # a
SUM_B_XHAT = 2  # b * (a - mean) / sqrt(var + eps): sum(dy * xhat) for batch norm
SUM_B_AND_B_XHAT = 3  # SUM_A of b and SUM_B_XHAT in one pass, as [2, cols] (batch norm's sums)


# ---------------------------------------------------------------- activations


def activation(node: Node, ctx: BindContext, inputs: tuple[Arg, ...], grad: bool = False) -> Launch:
    """`node`'s activation over its value, read from `inputs` (with grad=True its gradient, from
    y and dy, or x and dy for a parameterised relu): softmax along the last axis (softmax.cl),
    the others element-wise with the activation's -D options, its parameters included
    (cnnc/ir/activations.py)."""
    act = node.attrs["activation"]
    suffix = "_grad" if grad else ""
    out = Value(node.name)
    if act == "softmax":
        rows, cols = ctx.rows_cols(node.name)
        args = (*inputs, out, Int(rows), Int(cols))
        return launch("softmax.cl", "softmax" + suffix, flat(rows), args)
    n = ctx.numel(node.name)
    args = (*inputs, out, Int(n))
    return elementwise_launch(
        "elementwise.cl", "activation" + suffix, n, args, ctx.target,
        activation_defines(act, parameters(node.attrs), ctx.target),
    )


def activation_defines(act: str, params: Mapping[str, float | None] | None,
                       target: Target) -> dict[str, int]:
    """An element-wise activation kernel's -D options (elementwise.cl: activation,
    activation_grad, add_act_grad): the activation's, and VW = the elements a work-item takes,
    which it then handles as one vector; not for a relu with parameters, which is scalar
    (common.h: relu_keras)."""
    defines = kernel_defines(act, params)
    return defines if params else {**defines, "VW": elements_per_item(target)}


def epilogue_act(node: Node) -> dict[str, int]:
    """The -D options of the activation a GEMM applies as it stores: none for softmax, which
    spans a row (see `unfused_softmax`)."""
    act = node.attrs.get("activation", "linear")
    return kernel_defines(act) if ACTIVATIONS[act].elementwise else {}


def unfused_softmax(
    node: Node, ctx: BindContext, workspace: int
) -> tuple[Arg, tuple[Launch, ...], tuple[int, ...]]:
    """Where a conv2d or dense GEMM writes, the launches after it and the workspace they need.

    Softmax spans a row of outputs, more than one work-item's block, so it cannot be the GEMM's
    epilogue: the GEMM writes Workspace(`workspace`) and softmax.cl reads it into the node's
    value. With any other activation the GEMM writes the value itself.
    """
    if node.attrs["activation"] != "softmax":
        return Value(node.name), (), ()
    logits = Workspace(workspace)
    return logits, (activation(node, ctx, (logits,)),), (ctx.numel(node.name),)


# ---------------------------------------------------------------- matrix products


def matmul(
    ctx: BindContext,
    a: Arg,
    b: Arg,
    out: Arg,
    m: int,
    k: int,
    n: int,
    *,
    bias: Arg = NULL,
    act: Mapping[str, int] | None = None,
    variant: Mapping[str, Any] | None = None,
) -> Launch:
    """out[m, n] = act(a[m, k] . b[k, n] + bias); `variant`: the node's tuned tile, if any."""
    variant = variant or {}
    tile, local = with_local_tile(
        tuned_tile(n, ctx.target, variant), ctx.target, bool(variant.get("local", 1))
    )
    defines = {"K": k, "N": n, **tile, "HAS_BIAS": int(bias != NULL), **(act or {})}
    grid, group = gemm_grid(m, n, tile, local, ctx.target, variant)
    return launch("gemm.cl", "matmul", grid, (a, b, bias, out, Int(m)), defines, group)


def matmul_tn(
    ctx: BindContext,
    a: Arg,
    b: Arg,
    out: Arg,
    m: int,
    n: int,
    k: int,
    parts: Arg,
    variant: Mapping[str, Any] | None = None,
) -> NodeBinding:
    """out[m, n] = a[k, m]^T . b[k, n], the k rows cut in parts if that helps (the partial
    products go to `parts`, a workspace); `variant`: the node's tuned tile and split, if any."""
    variant = variant or {}
    tile = tuned_tile(n, ctx.target, variant)
    blocks = block_grid(m, n, tile)
    split = tuned_split(blocks[0] * blocks[1], k, 4 * (m + n), ctx.target, variant)
    grid = (*blocks, split)
    dst = out if split == 1 else parts
    defines = {"M": m, "N": n, **tile}
    main = launch(
        "gemm.cl",
        "matmul_tn",
        grid,
        (a, b, dst, Int(k)),
        defines,
        tuned_row_groups(grid, ctx.target, variant),
    )
    return with_parts_summed(main, parts, out, m * n, ctx.target)


def with_parts_summed(main: Launch, parts: Arg, out: Arg, size: int, target: Target) -> NodeBinding:
    """The binding of a launch whose reduction runs in parts along dim 2: with one part it
    wrote `out` itself; with more, each part wrote its `size` partial sums to `parts`, and
    reduce.cl adds them up into `out`."""
    split = main.global_size[2]
    if split == 1:
        return NodeBinding((main,))
    finish = sum_parts(parts, out, size, split, target)
    return NodeBinding((main, finish), workspaces=(split * size,))


def transpose(src: Arg, dst: Arg, batches: int, rows: int, cols: int, *,
              once: bool = False) -> Launch:
    """One work-item per element, in one launch dimension (grid dimensions 1 and 2 are capped
    on some drivers, target.py). once: `src` is state (Launch.once)."""
    n = batches * rows * cols
    return launch("gemm.cl", "transpose", flat(n), (src, dst, Int(n)), {"TR": rows, "TC": cols},
                  once=once)


# ---------------------------------------------------------------- sums


def sum_parts(
    parts: Arg,
    out: Arg,
    cols: int,
    chunks: int,
    target: Target,
    scale: float = 1.0,
    out_offset: int = 0,
) -> Launch:
    """out[out_offset + col] = scale * sum over the `chunks` rows of parts[chunk, col]."""
    vw = vector_width(cols, target)
    return launch(
        "reduce.cl",
        "col_sum_finish",
        flat(cols // vw),
        (parts, out, Int(cols), Int(chunks), Float(scale), Int(out_offset)),
        {"VW": vw},
    )


def column_sum(
    ctx: BindContext,
    a: Arg,
    out: Arg,
    rows: int,
    cols: int,
    *,
    mode: int = SUM_A,
    b: Arg = NULL,
    stats: Arg = NULL,
    eps: float = 0.0,
    scale: float = 1.0,
    out_offset: int = 0,
) -> tuple[tuple[Launch, ...], int]:
    """Launches for a column sum of a [rows, cols] into `out` (+ offset), times `scale`, and the
    floats of the partial-sums workspace, which is always Workspace(0). `mode` says what is
    summed (SUM_A, SUM_B_XHAT)."""
    chunks = column_chunks(rows, cols, ctx.target)
    vw = vector_width(cols, ctx.target)
    grid = (cols // vw, chunks)
    partial = launch(
        "reduce.cl",
        "col_sum_partial",
        grid,
        (a, b, stats, Float(eps), Workspace(0), Int(rows), Int(cols), Int(chunks)),
        {"MODE": mode, "VW": vw},
        row_groups(grid, ctx.target, across=0),  # one chunk's columns
    )
    finish = sum_parts(Workspace(0), out, cols, chunks, ctx.target, scale, out_offset)
    return (partial, finish), chunks * cols


# Rows per chunk of batch norm's one-pass per-channel partial sums on a CPU (reduce.cl's
# batch_stats_partial and col_sum_partial, batchnorm.cl's batchnorm_act_grad_partial): a chunk
# stays in the core's cache for batch_stats_partial's second read, and a map cut into many
# chunks leaves the driver groups to balance between cores when another process takes one.
# Measured on pocl (Zen 3, 14x14x48 at batch 128, under load): 128 rows a chunk 1.3-2.5x
# faster than column_chunks' 4 chunks of 6,272 rows; the finish launch reads chunks x C floats.
SUM_ROWS_CPU = 128


def channel_sum_chunks(rows: int, cols: int, target: Target) -> int:
    """Row chunks of batch norm's per-channel partial sums (launch dimension 1): CPUs a chunk
    per SUM_ROWS_CPU rows; GPUs column_chunks' few long ones, as before."""
    if target.kind != "cpu":
        return column_chunks(rows, cols, target)
    return max(1, min(rows // SUM_ROWS_CPU, GRID_GROUPS[1]))


def batchnorm_grad_sums(
    node: Node, ctx: BindContext, out: Arg
) -> tuple[tuple[Launch, ...], int]:
    """[sum(dy); sum(dy * xhat)] per channel into `out` (2 x C), for a node whose first inputs
    are (x, stats, dy): the two reductions of batch norm's input gradient in one pass over x and
    dy (reduce.cl's mode 3; each sum in the order column_sum's modes give it). Returns the
    launches and the workspace (floats) they need."""
    x, stats, dy = node.inputs[:3]
    rows, cols = ctx.rows_cols(x)
    chunks = channel_sum_chunks(rows, cols, ctx.target)
    vw = vector_width(cols, ctx.target)
    grid = (cols // vw, chunks)
    partial = launch(
        "reduce.cl",
        "col_sum_partial",
        grid,
        (Value(x), Value(dy), Value(stats), Float(node.attrs["epsilon"]), Workspace(0),
         Int(rows), Int(cols), Int(chunks)),
        {"MODE": SUM_B_AND_B_XHAT, "VW": vw},
        row_groups(grid, ctx.target, across=0),
    )
    finish = sum_parts(Workspace(0), out, 2 * cols, chunks, ctx.target)
    return (partial, finish), 2 * chunks * cols


# Rows per work-item of the per-channel training kernels of batchnorm.cl: enough to amortise
# the per-channel factors on a CPU core; on a GPU more, shorter loops fill the device.
CHANNEL_ROWS = {"cpu": 32, "gpu": 4}


def channel_grid(
    ctx: BindContext, rows: int, cols: int
) -> tuple[tuple[int, int], tuple[int, ...] | None, int, int]:
    """The (cols / VW, chunks) grid of batchnorm.cl's training kernels over a [rows, cols]
    tensor: the grid, its work-groups, the vector width VW and the number of row chunks."""
    vw = vector_width(cols, ctx.target)
    per_chunk = CHANNEL_ROWS.get(ctx.target.kind, 4)
    chunks = max(1, min(rows // per_chunk, GRID_GROUPS[1]))
    grid = (cols // vw, chunks)
    return grid, row_groups(grid, ctx.target, across=0), vw, chunks


def batchnorm_grad_apply(
    ctx: BindContext, x: str, stats: str, dy: str, gamma: Arg, sums: Arg, out: Arg, eps: float
) -> Launch:
    """Batch norm's input gradient from its per-channel sums [sum(dy); sum(dy * xhat)]
    (batchnorm_grad_sums): batchnorm.cl's per-channel kernel over the [rows, cols] tensor."""
    rows, cols = ctx.rows_cols(x)
    grid, group, vw, chunks = channel_grid(ctx, rows, cols)
    args = (Value(x), Value(stats), Value(dy), gamma, sums, out, Int(rows), Int(cols),
            Int(chunks), Float(eps), Float(1.0 / rows))
    defines = {**affine_defines(gamma, NULL), "VW": vw}
    return launch("batchnorm.cl", "batchnorm_grad_input", grid, args, defines, group)


def sum_all(src: Arg, out: Arg, n: int, scale: float) -> Launch:
    return launch("reduce.cl", "sum_all", (1,), (src, out, Int(n), Float(scale)))


# ---------------------------------------------------------------- copies


def copy_block(
    src: str,
    dst: str,
    shape: tuple[int, ...],
    axis: int,
    length: int,
    *,
    src_axis: int,
    dst_axis: int,
    target: Target,
    src_start: int = 0,
    dst_start: int = 0,
) -> Launch:
    """Copy `length` positions along `axis` from src (of `src_axis` positions there, from
    `src_start`) to dst (of `dst_axis`, from `dst_start`); `shape` gives the other axes. Seen
    as rows (the axes before `axis`) of one contiguous run of length * inner floats each."""
    outer, inner = prod(shape[:axis]), prod(shape[axis + 1 :])
    run = length * inner
    vw = run_vector(run, target=target)
    rows_per, chunk, chunks, items = run_grid(outer, run, vw, target)
    args = (
        Value(src),
        Value(dst),
        Int(outer),
        Int(run),
        Int(rows_per),
        Int(chunk),
        Int(chunks),
        Int(src_axis * inner),
        Int(src_start * inner),
        Int(dst_axis * inner),
        Int(dst_start * inner),
    )
    return launch("elementwise.cl", "copy_block", flat(items), args, {"VW": vw})


# Inputs up to which a concatenation is one launch (elementwise.cl's concat_rows), not a
# copy_block each: the launches of a small tensor's copies cost more than the floats they move.
CONCAT_MAX_INPUTS = 4


def concat_rows(srcs: Sequence[str], dst: str, shape: tuple[int, ...], axis: int,
                lengths: Sequence[int], target: Target) -> Launch:
    """Concatenate `srcs` (of `lengths` positions along `axis` each) into dst of `shape`, in
    one launch: rows (the axes before `axis`) of each source's contiguous run in turn."""
    if not 2 <= len(srcs) <= CONCAT_MAX_INPUTS or len(lengths) != len(srcs):
        raise InternalError(f"concat_rows takes 2 to {CONCAT_MAX_INPUTS} inputs, got "
                            f"{len(srcs)} ({len(lengths)} lengths)")
    outer, inner = prod(shape[:axis]), prod(shape[axis + 1 :])
    runs = [length * inner for length in lengths]
    vw = run_vector(*runs, target=target)
    rows_per, chunk, chunks, items = run_grid(outer, sum(runs), vw, target)
    ins = [Value(s) for s in srcs] + [NULL] * (CONCAT_MAX_INPUTS - len(srcs))
    args = (*ins, Value(dst), Int(outer), Int(rows_per), Int(chunk), Int(chunks))
    defines = {"INPUTS": len(srcs), "VW": vw,
               **{f"RUN{i}": run for i, run in enumerate(runs)}}
    return launch("elementwise.cl", "concat_rows", flat(items), args, defines)


def pad_rows(
    src: str,
    dst: str,
    rows: int,
    *,
    oh: int,
    h: int,
    pt: int,
    in_run: int,
    out_run: int,
    lead: int,
    target: Target,
) -> Launch:
    """Rows of `out_run` floats of dst from rows of `in_run` floats of src shifted by `lead`
    floats (negative: cropped), zeros elsewhere; dst row r is image r // oh's row r % oh, which
    reads src row r % oh - pt of that image's h (zeros outside): elementwise.cl's pad_rows."""
    vw = run_vector(in_run, out_run, abs(lead), target=target)
    rows_per, chunk, chunks, items = run_grid(rows, out_run, vw, target)
    args = (Value(src), Value(dst), Int(rows), Int(rows_per), Int(chunk), Int(chunks), Int(oh),
            Int(h), Int(pt), Int(in_run), Int(out_run), Int(lead))
    return launch("elementwise.cl", "pad_rows", flat(items), args, {"VW": vw})


def pad_columns(src: Arg, dst: Arg, rows: int, cols: int, padded: int, target: Target,
                *, once: bool = False) -> Launch:
    """dst, a rows x `padded` matrix: src's rows of `cols` floats, then zeros (a kernel padded
    to more columns, conv2d.cl's -D FP): elementwise.cl's pad_rows on one image of `rows`
    rows. once: src is a weight (or a node's constant workspace), so dst is one too."""
    vw = run_vector(cols, padded, target=target)
    rows_per, chunk, chunks, items = run_grid(rows, padded, vw, target)
    args = (src, dst, Int(rows), Int(rows_per), Int(chunk), Int(chunks), Int(rows), Int(rows),
            Int(0), Int(cols), Int(padded), Int(0))
    return launch("elementwise.cl", "pad_rows", flat(items), args, {"VW": vw}, once=once)


# ---------------------------------------------------------------- convolution and pooling


def conv_geometry(attrs: Attrs, in_shape: tuple[int, ...]) -> dict[str, int]:
    """conv2d.cl's geometry defines for a convolution of an input of `in_shape` (NHWC)."""
    _, h, w, c = in_shape
    geo = window_geometry(
        (h, w), attrs["kernel_size"], attrs["strides"], attrs["padding"], attrs["dilation_rate"]
    )
    g, filters = attrs["groups"], attrs["filters"]
    if attrs.get("window") is not None:
        # A convolution a transposed one inverts (bind_conv_transpose.py): its output size and
        # padding before come from the transposed convolution's arguments, not from padding.
        (geo["OH"], geo["OW"]), (geo["PT"], geo["PL"]) = attrs["window"]
    keys = ("H", "W", "KH", "KW", "SH", "SW", "DH", "DW", "OH", "OW", "PT", "PL")
    return {**{k: geo[k] for k in keys}, "C": c, "CG": c // g, "F": filters, "FG": filters // g}


def im2col(x: str, out: Arg, geo: Mapping[str, int], batch: int, target: Target) -> Launch:
    """conv2d.cl's im2col: PIX rows of the GEMM operand per work-item (as many as an
    element-wise kernel's elements: a CPU driver pays per work-item)."""
    rows = batch * geo["OH"] * geo["OW"]
    pix = elements_per_item(target)
    return launch("conv2d.cl", "im2col", flat(ceil_div(rows, pix)), (Value(x), out, Int(batch)),
                  {**geo, "PIX": pix})


def uses_im2col(
    node: Node,
    geo: Mapping[str, int],
    variant: Mapping[str, Any] | None = None,
    target: Target | None = None,
) -> bool:
    """Whether a convolution (or its kernel gradient) copies its windows out: few channels,
    unless a tuned variant says "im2col": 0 (the implicit GEMM was measured faster there); more
    channels where a tuned variant says "im2col": 1, or without one, a 1x1 strided forward pass
    on a CPU `target` (strided_copies)."""
    if node.attrs["groups"] != 1:
        return False
    variant = variant or {}
    if geo["C"] <= IM2COL_MAX_CHANNELS:
        return bool(variant.get("im2col", 1))
    if "im2col" in variant:
        return variant["im2col"] == 1
    return target is not None and strided_copies(geo, target)


def strided_copies(geo: Mapping[str, int], target: Target) -> bool:
    """Whether a 1x1 strided convolution's forward pass copies the pixels it reads out by
    default (a CPU): its implicit GEMM reads another cache line every step (resnet_mini's
    shortcut, 16 channels, stride 2, pocl on a Zen 3: 1.4x faster copied, benchmarks/strided.py).
    Its kernel gradient keeps the implicit GEMM (conv2d.cl's SYNC_STEPS ran it faster still)."""
    return (target.kind == "cpu" and geo["KH"] == 1 and geo["KW"] == 1
            and (geo["SH"] > 1 or geo["SW"] > 1))


def window_defines(
    attrs: Attrs, in_shape: tuple[int, ...], out_shape: tuple[int, ...], target: Target
) -> dict[str, int]:
    """pool.cl's window geometry defines for a pooling of `in_shape` into `out_shape` (NHWC)."""
    _, h, w, c = in_shape
    geo = pool_attrs_geometry((h, w), attrs)
    if (geo["OH"], geo["OW"]) != tuple(out_shape[1:3]):
        raise InternalError(
            f"pooling windows give {geo['OH']}x{geo['OW']} outputs, shape inference "
            f"{out_shape[1]}x{out_shape[2]}"
        )
    keys = ("H", "W", "KH", "KW", "SH", "SW", "OH", "OW", "PT", "PL")
    # ONNX's options only when used, so Keras poolings keep their kernels' build options.
    if pool_is_onnx(attrs):
        keys += ("DH", "DW", "PB", "PR", "COUNT_PAD")
    return {"C": c, "VW": vector_width(c, target), **{k: geo[k] for k in keys}}


def global_pool_defines(shape: tuple[int, ...], target: Target, *, wide: bool = False
                        ) -> dict[str, int]:
    """pool.cl's defines for global average pooling over the positions of `shape` (NHWC).

    wide: on a CPU, vectors up to two registers wide (float16 on AVX2), for the forward pool:
    each work-item then reads whole 64-byte lines of a position's channels. Measured on pocl
    (2-core Zen 3, batch 256, the mini specs' 7x7x64-128 and 14x14x16 maps): 1.15-1.4x faster
    than float8 (two or more running sums per work-item gained nothing there)."""
    _, h, w, c = shape
    widest = 2 * target.max_vector if wide and target.kind == "cpu" else target.max_vector
    vw = next(v for v in (16, 8, 4, 2, 1) if v <= widest and c % v == 0)
    return {"HW": h * w, "C": c, "VW": vw}


def affine_defines(gamma: Arg, beta: Arg) -> dict[str, int]:
    """batchnorm.cl's defines: whether the scale and the offset are there."""
    return {"HAS_GAMMA": int(gamma != NULL), "HAS_BETA": int(beta != NULL)}


def bn_fold(node: Node, ctx: BindContext, cols: int, w: Workspace, b: Workspace
            ) -> tuple[Launch, int]:
    """The `once` batchnorm_fold launch of a fused `<layer>_bn` node that writes its folded
    kernel into workspace w and its bias into b (cols of them: the layer's output channels),
    and the folded kernel's size in floats."""
    n_layer = 2 if node.attrs["use_bias"] else 1
    kernel, bias = node.params[0], node.params[1] if n_layer == 2 else None
    by_suffix = {p.rsplit("/", 1)[-1]: p for p in node.params[n_layer:]}
    gamma = Value(by_suffix["gamma"]) if node.attrs["scale"] else NULL
    beta = Value(by_suffix["beta"]) if node.attrs["center"] else NULL
    # The kernel as [rows, cols], cols the output channels: the kernel's flat index modulo
    # cols is the channel (HWIO and (in, units) kernels, and a depthwise (KH, KW, C, M)
    # kernel's c * M + m).
    rows = prod(ctx.shape(kernel)) // cols
    grid, group, vw, chunks = channel_grid(ctx, rows, cols)
    args = (Value(kernel), Value(bias) if bias else NULL, gamma, beta,
            Value(by_suffix["moving_mean"]), Value(by_suffix["moving_variance"]), w, b,
            Int(rows), Int(cols), Int(chunks), Float(node.attrs["epsilon"]))
    defines = {**affine_defines(gamma, beta), "HAS_BIAS": int(bias is not None), "VW": vw}
    fold = launch("batchnorm.cl", "batchnorm_fold", grid, args, defines, group, once=True)
    return fold, rows * cols


def gather_defines(segments: Sequence[Sequence[int]], source_channels: Sequence[int]
                   ) -> dict[str, int]:
    """The -D options of a gathered input's runs (kernels/gather.h; conv2d.cl's GATHERED path
    spells them alike): segments (source, start, count, k0, kstep) as cnnc/ir/gathered.py
    holds them, source_channels each input's channels."""
    defines = {"SOURCES": len(source_channels), "SEGMENTS": len(segments)}
    for i, (source, start, count, k0, step) in enumerate(segments):
        defines.update({f"SEG{i}_SRC": source, f"SEG{i}_C": source_channels[source],
                        f"SEG{i}_OFF": start, f"SEG{i}_LEN": count, f"SEG{i}_K0": k0,
                        f"SEG{i}_KS": step})
    return defines
