"""Binding: each op of the graph to the OpenCL kernels that compute it (third stage of the backend).

`BINDERS` maps every op name in the op table to a function that, given a node with concrete
shapes, returns its launches: kernel file, kernel name, -D defines (integers only), global and
local sizes, and arguments (graph values, workspaces, integer and float scalars, and the run's
step or an update's per-step scalars). Nothing here touches a device: the runtime builds and
enqueues what the bindings describe, so `cnnc compile --plan` can print them as they are.

Sizes that shape the arithmetic of compute-bound kernels (convolutions, matrix products, pooling
windows) are -D defines, so the compiler unrolls and folds them. The batch size is always a
kernel argument, never a define: the last partial batch of `predict` and every other batch size
reuse the same programs. Memory-bound kernels take their element counts as arguments too, so one
program serves every shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import prod

from cnnc.ir.convpool import window_geometry
from cnnc.ir.graph import Graph, Node
from cnnc.ir.layers import pool_strides
from cnnc.ir.ops import OPS

# ------------------------------------------------------------------ launch descriptions


@dataclass(frozen=True)
class Value:
    """A graph value or state tensor, by name."""

    name: str


@dataclass(frozen=True)
class Workspace:
    """The node's i-th scratch buffer (planned like any other tensor, live only at this node)."""

    index: int


@dataclass(frozen=True)
class Zeros:
    """A read-only buffer of zeros that padding taps read instead of branching."""


@dataclass(frozen=True)
class Int:
    value: int


@dataclass(frozen=True)
class UInt:
    value: int


@dataclass(frozen=True)
class Float:
    value: float


@dataclass(frozen=True)
class Step:
    """The run's step counter (uint), set before each run."""


@dataclass(frozen=True)
class UpdateScalar:
    """Float i of the update op's per-step scalars (OpDef.scalars), set before each run."""

    index: int


@dataclass(frozen=True)
class Null:
    """An unused pointer argument (a kernel variant that does not read it)."""


Arg = Value | Workspace | Zeros | Int | UInt | Float | Step | UpdateScalar | Null
ZEROS, STEP, NULL = Zeros(), Step(), Null()


@dataclass(frozen=True)
class Launch:
    file: str
    kernel: str
    defines: tuple[tuple[str, int], ...]
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None
    args: tuple[Arg, ...]

    @property
    def define_map(self) -> dict[str, int]:
        return dict(self.defines)


@dataclass(frozen=True)
class NodeBinding:
    launches: tuple[Launch, ...] = ()
    workspaces: tuple[int, ...] = ()  # bytes of each scratch buffer
    view_of: str | None = None  # the output is this input's storage, under another shape
    zeros: int = 0  # floats of zeros the launches may read
    fed: bool = False  # the value is written by the host (input nodes)


def launch(file: str, kernel: str, global_size: tuple[int, ...], args: tuple[Arg, ...],
           defines: Mapping[str, int] | None = None,
           local_size: tuple[int, ...] | None = None) -> Launch:
    return Launch(file, kernel, tuple(sorted((defines or {}).items())), tuple(global_size),
                  local_size, tuple(args))


# ------------------------------------------------------------------ the target device


@dataclass(frozen=True)
class Target:
    """What the bindings need to know about the device to choose tile sizes."""

    kind: str = "cpu"  # 'cpu' | 'gpu' | ...
    compute_units: int = 1

    @property
    def max_vector(self) -> int:
        # CPUs: a float16 register block maps onto AVX-512 registers (float8 on AVX2 still
        # compiles to two). GPUs: a work-item is one lane; narrow vectors keep registers free.
        return 16 if self.kind == "cpu" else 4

    @property
    def rows_per_item(self) -> int:
        return 8 if self.kind == "cpu" else 4

    @property
    def min_items(self) -> int:
        """Work-items a reduction-heavy kernel should offer before it is split."""
        return 4 * self.compute_units if self.kind == "cpu" else 64 * self.compute_units

    @property
    def cache_bytes(self) -> int:
        """What one part of a split reduction may read (CPU: about one core's L2)."""
        return 1 << 20

    @property
    def local_tile(self) -> dict[str, int] | None:
        """Local-memory tiling (tile.h) for GEMM-like kernels: GPUs only; on a CPU device the
        copies and barriers cost more than they save (NOTES.md)."""
        return {"TX": 16, "TY": 16, "KT": 16} if self.kind == "gpu" else None


@dataclass
class BindContext:
    graph: Graph
    batch: int
    target: Target = field(default_factory=Target)

    def shape(self, value: str) -> tuple[int, ...]:
        shape = self.graph.shape_of(value)
        return tuple(self.batch if d is None else d for d in shape)

    def numel(self, value: str) -> int:
        return prod(self.shape(value))


# ------------------------------------------------------------------ tiling choices

ACT_CODES = {"linear": 0, "relu": 1, "leaky_relu": 2, "elu": 3, "sigmoid": 4, "tanh": 5}
ELEMENTWISE_GROUP = 64  # 1-D launches are rounded up to this; kernels check their bound


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, b: int) -> int:
    return _ceil_div(a, b) * b


def _flat(n: int) -> tuple[int]:
    return (_round_up(max(n, 1), ELEMENTWISE_GROUP),)


def vector_width(n: int, target: Target) -> int:
    """The widest vector (up to the target's) dividing n: channels moved per work-item."""
    return next(v for v in (16, 8, 4, 2, 1) if v <= target.max_vector and n % v == 0)


def register_tile(cols: int, target: Target) -> dict[str, int]:
    """MR x (VW * NV) outputs per work-item for a GEMM with `cols` columns per group.

    VW is the widest vector dividing cols (so no column block straddles the end or a group);
    two vectors per row when cols allows, which measured ~20% faster on AVX-512 (NOTES.md).
    """
    vw = vector_width(cols, target)
    nv = 2 if cols % (2 * vw) == 0 and target.kind == "cpu" else 1
    return {"MR": target.rows_per_item, "VW": vw, "NV": nv}


def _gemm_grid(rows: int, cols: int, tile: Mapping[str, int], local: bool
               ) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """Global and local sizes of a GEMM-like launch: one work-item per MR x NR block, or with
    local tiling one (TX, TY) work-group per (TY*MR) x (TX*NR) tile."""
    nr = tile["VW"] * tile["NV"]
    if not local:
        return (_ceil_div(cols, nr), _ceil_div(rows, tile["MR"])), None
    tx, ty = tile["TX"], tile["TY"]
    return ((_ceil_div(cols, tx * nr) * tx, _ceil_div(rows, ty * tile["MR"]) * ty), (tx, ty))


def _with_local_tile(tile: dict[str, int], target: Target, allowed: bool = True
                     ) -> tuple[dict[str, int], bool]:
    if not allowed or target.local_tile is None:
        return tile, False
    return {**tile, "LOCAL_TILE": 1, **target.local_tile}, True


def _split(items: int, reduction: int, step_bytes: int, target: Target) -> int:
    """Parts to cut a long reduction into (partial sums are added up after).

    A GPU needs enough work-items to fill it. A CPU device runs the work-items of one part
    together, so a part should read no more than fits in a core's cache: measured on the fashion
    model's conv3 kernel gradient at batch 256, 47 GFLOP/s uncut, ~185 GFLOP/s in parts of ~1 MiB.
    step_bytes: bytes read per step of the reduction (one pixel's x and dy).
    """
    if target.kind == "cpu":
        per_part = max(target.cache_bytes // max(step_bytes, 1), 64)
        return max(1, _ceil_div(reduction, per_part))
    split = 1
    while items * split < target.min_items and reduction // (split * 2) >= 64:
        split *= 2
    return split


def _activation_launches(node: Node, ctx: BindContext, out: Arg,
                         into: Arg) -> tuple[Launch, ...]:
    """Softmax after a GEMM (the other activations are fused into its epilogue)."""
    if node.attrs.get("activation") != "softmax":
        return ()
    shape = ctx.shape(node.name)
    rows, cols = prod(shape[:-1]), shape[-1]
    return (launch("softmax.cl", "softmax", _flat(rows), (out, into, Int(rows), Int(cols))),)


def _epilogue_act(node: Node) -> int:
    act = node.attrs.get("activation", "linear")
    return 0 if act == "softmax" else ACT_CODES[act]


# ------------------------------------------------------------------ layer ops


def bind_input(node: Node, ctx: BindContext) -> NodeBinding:
    return NodeBinding(fed=True)


def bind_view(node: Node, ctx: BindContext) -> NodeBinding:
    """Same bytes, another shape (flatten, reshape) or the identity (dropout at inference)."""
    return NodeBinding(view_of=node.inputs[0])


def _conv_geometry(attrs, in_shape: tuple[int, ...], filters: int) -> dict[str, int]:
    _, h, w, c = in_shape
    geo = window_geometry((h, w), attrs["kernel_size"], attrs["strides"], attrs["padding"],
                          attrs["dilation_rate"])
    g = attrs["groups"]
    keys = ("H", "W", "KH", "KW", "SH", "SW", "DH", "DW", "OH", "OW", "PT", "PL")
    out = {k: geo[k] for k in keys}
    out.update(C=c, CG=c // g, F=filters, FG=filters // g)
    return out


# Up to this many input channels, a convolution copies its windows out (im2col) and runs a
# plain matrix product: with 1 channel (the fashion model's first layer) the implicit GEMM spends
# more on window bookkeeping than on arithmetic (measured ~70 GFLOP/s against ~240).
IM2COL_MAX_CHANNELS = 4


def _im2col(x: str, out: Arg, geo: Mapping[str, int], batch: int) -> Launch:
    rows = batch * geo["OH"] * geo["OW"]
    return launch("conv2d.cl", "im2col", _flat(rows), (Value(x), out, Int(batch)), dict(geo))


def _uses_im2col(node: Node, geo: Mapping[str, int]) -> bool:
    return node.attrs["groups"] == 1 and geo["C"] <= IM2COL_MAX_CHANNELS


def bind_conv2d(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    kernel = node.params[0]
    bias = node.params[1] if node.attrs["use_bias"] else None
    geo = _conv_geometry(node.attrs, ctx.shape(x), node.attrs["filters"])
    if _uses_im2col(node, geo):
        return _bind_conv2d_im2col(node, ctx, geo, x, kernel, bias)
    rows = ctx.batch * geo["OH"] * geo["OW"]
    tile, local = _with_local_tile(register_tile(geo["FG"], ctx.target), ctx.target,
                                   node.attrs["groups"] == 1)
    defines = {**geo, **tile, "HAS_BIAS": int(bias is not None), "ACT": _epilogue_act(node)}
    softmax = node.attrs["activation"] == "softmax"
    gemm_out: Arg = Workspace(0) if softmax else Value(node.name)
    grid, group = _gemm_grid(rows, geo["F"], tile, local)
    args = (Value(x), Value(kernel), Value(bias) if bias else NULL, ZEROS, gemm_out,
            Int(ctx.batch))
    launches = (launch("conv2d.cl", "conv2d_forward", grid, args, defines, group),
                *_activation_launches(node, ctx, gemm_out, Value(node.name)))
    return NodeBinding(launches, workspaces=(4 * ctx.numel(node.name),) if softmax else (),
                       zeros=geo["CG"])


def _bind_conv2d_im2col(node: Node, ctx: BindContext, geo: Mapping[str, int], x: str,
                        kernel: str, bias: str | None) -> NodeBinding:
    rows = ctx.batch * geo["OH"] * geo["OW"]
    depth = geo["KH"] * geo["KW"] * geo["C"]
    softmax = node.attrs["activation"] == "softmax"
    gemm_out: Arg = Workspace(1) if softmax else Value(node.name)
    launches = (
        _im2col(x, Workspace(0), geo, ctx.batch),
        _matmul(Workspace(0), Value(kernel), Value(bias) if bias else NULL, gemm_out, rows,
                depth, geo["F"], _epilogue_act(node), ctx),
        *_activation_launches(node, ctx, gemm_out, Value(node.name)),
    )
    work = (4 * rows * depth,) + ((4 * ctx.numel(node.name),) if softmax else ())
    return NodeBinding(launches, workspaces=work)


def _window_defines(attrs, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                    target: Target) -> dict:
    _, h, w, c = in_shape
    geo = window_geometry((h, w), attrs["pool_size"], pool_strides(attrs), attrs["padding"])
    assert (geo["OH"], geo["OW"]) == tuple(out_shape[1:3])
    keys = ("H", "W", "KH", "KW", "SH", "SW", "OH", "OW", "PT", "PL")
    return {"C": c, "VW": vector_width(c, target), **{k: geo[k] for k in keys}}


def bind_pool(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    defines = _window_defines(node.attrs, ctx.shape(x), ctx.shape(node.name), ctx.target)
    return NodeBinding((launch("pool.cl", node.op,
                               _flat(ctx.numel(node.name) // defines["VW"]),
                               (Value(x), Value(node.name), Int(ctx.batch)), defines),))


def bind_global_avgpool2d(node: Node, ctx: BindContext) -> NodeBinding:
    n, h, w, c = ctx.shape(node.inputs[0])
    defines = {"HW": h * w, "C": c, "VW": vector_width(c, ctx.target)}
    return NodeBinding((launch("pool.cl", "global_avgpool2d", _flat(n * c // defines["VW"]),
                               (Value(node.inputs[0]), Value(node.name), Int(n)), defines),))


def _matmul(a: Arg, b: Arg, bias: Arg, out: Arg, m: int, k: int, n: int, act: int,
            ctx: BindContext) -> Launch:
    tile, local = _with_local_tile(register_tile(n, ctx.target), ctx.target)
    defines = {"K": k, "N": n, **tile, "HAS_BIAS": int(bias != NULL), "ACT": act}
    grid, group = _gemm_grid(m, n, tile, local)
    return launch("gemm.cl", "matmul", grid, (a, b, bias, out, Int(m)), defines, group)


def bind_dense(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    shape = ctx.shape(x)
    m, k, n = prod(shape[:-1]), shape[-1], node.attrs["units"]
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    softmax = node.attrs["activation"] == "softmax"
    gemm_out: Arg = Workspace(0) if softmax else Value(node.name)
    launches = (_matmul(Value(x), Value(node.params[0]), bias, gemm_out, m, k, n,
                        _epilogue_act(node), ctx),
                *_activation_launches(node, ctx, gemm_out, Value(node.name)))
    return NodeBinding(launches, workspaces=(4 * ctx.numel(node.name),) if softmax else ())


def bind_batchnorm(node: Node, ctx: BindContext) -> NodeBinding:
    by_suffix = {p.rsplit("/", 1)[-1]: p for p in node.params}
    gamma, beta = by_suffix.get("gamma"), by_suffix.get("beta")
    n, cols = ctx.numel(node.name), ctx.shape(node.name)[-1]
    args = (Value(node.inputs[0]), Value(gamma) if gamma else NULL,
            Value(beta) if beta else NULL, Value(by_suffix["moving_mean"]),
            Value(by_suffix["moving_variance"]), Value(node.name), Int(n), Int(cols),
            Float(node.attrs["epsilon"]))
    defines = {"HAS_GAMMA": int(gamma is not None), "HAS_BETA": int(beta is not None)}
    return NodeBinding((launch("batchnorm.cl", "batchnorm", _flat(n), args, defines),))


def bind_activation(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    shape = ctx.shape(node.name)
    act = node.attrs["activation"]
    if act == "softmax":
        rows, cols = prod(shape[:-1]), shape[-1]
        return NodeBinding((launch("softmax.cl", "softmax", _flat(rows),
                                   (Value(x), Value(node.name), Int(rows), Int(cols))),))
    n = prod(shape)
    return NodeBinding((launch("elementwise.cl", "activation", _flat(n),
                               (Value(x), Value(node.name), Int(n)),
                               {"ACT": ACT_CODES[act]}),))


def bind_add(node: Node, ctx: BindContext) -> NodeBinding:
    n = ctx.numel(node.name)
    a, b, *rest = node.inputs
    out = Value(node.name)
    launches = [launch("elementwise.cl", "add", _flat(n), (Value(a), Value(b), out, Int(n)))]
    launches += [launch("elementwise.cl", "accumulate", _flat(n), (Value(v), out, Int(n)))
                 for v in rest]
    return NodeBinding(tuple(launches))


def _copy_block(src: str, dst: str, shape: tuple[int, ...], axis: int, length: int,
                src_axis: int, src_start: int, dst_axis: int, dst_start: int) -> Launch:
    outer, inner = prod(shape[:axis]), prod(shape[axis + 1:])
    args = (Value(src), Value(dst), Int(outer), Int(length), Int(inner), Int(src_axis),
            Int(src_start), Int(dst_axis), Int(dst_start))
    return launch("elementwise.cl", "copy_block", _flat(outer * length * inner), args)


def bind_concatenate(node: Node, ctx: BindContext) -> NodeBinding:
    out_shape = ctx.shape(node.name)
    axis = node.attrs["axis"] % len(out_shape)
    launches, start = [], 0
    for v in node.inputs:
        length = ctx.shape(v)[axis]
        launches.append(_copy_block(v, node.name, out_shape, axis, length, length, 0,
                                    out_shape[axis], start))
        start += length
    return NodeBinding(tuple(launches))


# ------------------------------------------------------------------ training ops


def bind_activation_grad(node: Node, ctx: BindContext) -> NodeBinding:
    y, dy = node.inputs
    shape = ctx.shape(node.name)
    act = node.attrs["activation"]
    if act == "softmax":
        rows, cols = prod(shape[:-1]), shape[-1]
        return NodeBinding((launch("softmax.cl", "softmax_grad", _flat(rows),
                                   (Value(y), Value(dy), Value(node.name), Int(rows),
                                    Int(cols))),))
    n = prod(shape)
    return NodeBinding((launch("elementwise.cl", "activation_grad", _flat(n),
                               (Value(y), Value(dy), Value(node.name), Int(n)),
                               {"ACT": ACT_CODES[act]}),))


def _transpose(src: Arg, dst: Arg, batches: int, rows: int, cols: int) -> Launch:
    return launch("gemm.cl", "transpose", (rows, cols, batches), (src, dst),
                  {"TR": rows, "TC": cols})


def bind_conv2d_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
    dy, kernel = node.inputs
    geo = _conv_geometry(node.attrs, ctx.shape(node.name), node.attrs["filters"])
    rows = ctx.batch * geo["H"] * geo["W"]
    tile, local = _with_local_tile(register_tile(geo["CG"], ctx.target), ctx.target,
                                   node.attrs["groups"] == 1)
    grid, group = _gemm_grid(rows, geo["C"], tile, local)
    taps = geo["KH"] * geo["KW"]
    launches = (
        _transpose(Value(kernel), Workspace(0), taps, geo["CG"], geo["F"]),
        launch("conv2d.cl", "conv2d_grad_input", grid,
               (Value(dy), Workspace(0), ZEROS, Value(node.name), Int(ctx.batch)),
               {**geo, **tile}, group),
    )
    return NodeBinding(launches, workspaces=(4 * taps * geo["CG"] * geo["F"],), zeros=geo["FG"])


def _sum_parts(parts: Arg, out: Arg, cols: int, chunks: int, target: Target,
               scale: float = 1.0, out_offset: int = 0) -> Launch:
    vw = vector_width(cols, target)
    return launch("reduce.cl", "col_sum_finish", _flat(cols // vw),
                  (parts, out, Int(cols), Int(chunks), Float(scale), Int(out_offset)),
                  {"VW": vw})


def bind_conv2d_grad_kernel(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    geo = _conv_geometry(node.attrs, ctx.shape(x), node.attrs["filters"])
    if _uses_im2col(node, geo):
        pixels = ctx.batch * geo["OH"] * geo["OW"]
        depth = geo["KH"] * geo["KW"] * geo["C"]
        tn = _matmul_tn(Workspace(0), Value(dy), Value(node.name), depth, geo["F"], pixels, ctx,
                        Workspace(1))
        return NodeBinding((_im2col(x, Workspace(0), geo, ctx.batch), *tn.launches),
                           workspaces=(4 * pixels * depth, *tn.workspaces))
    rows = geo["KH"] * geo["KW"] * geo["CG"]
    pixels = ctx.batch * geo["OH"] * geo["OW"]
    tile = register_tile(geo["FG"], ctx.target)
    blocks = (geo["F"] // (tile["VW"] * tile["NV"]), _ceil_div(rows, tile["MR"]))
    split = _split(blocks[0] * blocks[1], pixels, 4 * (geo["C"] + geo["F"]), ctx.target)
    defines = {**geo, **tile, "TAP_ROWS": int(geo["CG"] % tile["MR"] == 0)}
    batch = Int(ctx.batch)
    if split == 1:
        return NodeBinding((launch("conv2d.cl", "conv2d_grad_kernel", (*blocks, 1),
                                   (Value(x), Value(dy), Value(node.name), batch), defines),))
    size = rows * geo["F"]
    return NodeBinding(
        (launch("conv2d.cl", "conv2d_grad_kernel", (*blocks, split),
                (Value(x), Value(dy), Workspace(0), batch), defines),
         _sum_parts(Workspace(0), Value(node.name), size, split, ctx.target)),
        workspaces=(4 * split * size,))


def _column_chunks(rows: int, cols: int, target: Target) -> int:
    """Row chunks for a two-stage column sum: enough work-items, and rows enough per chunk."""
    chunks = 1
    while chunks * cols < 16 * target.min_items and rows // (chunks * 2) >= 32:
        chunks *= 2
    return chunks


def _column_sum(a: Arg, b: Arg, stats: Arg, eps: float, out: Arg, rows: int, cols: int,
                mode: int, ctx: BindContext, scale: float = 1.0,
                out_offset: int = 0) -> tuple[tuple[Launch, ...], int]:
    """Launches for a column sum into `out` (+ offset), and the partial-sums workspace size.

    The partials always go to Workspace(0)."""
    chunks = _column_chunks(rows, cols, ctx.target)
    vw = vector_width(cols, ctx.target)
    partial = launch("reduce.cl", "col_sum_partial", (cols // vw, chunks),
                     (a, b, stats, Float(eps), Workspace(0), Int(rows), Int(cols), Int(chunks)),
                     {"MODE": mode, "VW": vw})
    finish = _sum_parts(Workspace(0), out, cols, chunks, ctx.target, scale, out_offset)
    return (partial, finish), 4 * chunks * cols


def bind_bias_grad(node: Node, ctx: BindContext) -> NodeBinding:
    dy = node.inputs[0]
    cols = ctx.shape(node.name)[-1]
    rows = ctx.numel(dy) // cols
    launches, work = _column_sum(Value(dy), NULL, NULL, 0.0, Value(node.name), rows, cols, 0,
                                 ctx)
    return NodeBinding(launches, workspaces=(work,))


def bind_dense_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
    dy, kernel = node.inputs
    k_in, units = ctx.shape(kernel)
    m = ctx.numel(dy) // units
    launches = (_transpose(Value(kernel), Workspace(0), 1, k_in, units),
                _matmul(Value(dy), Workspace(0), NULL, Value(node.name), m, units, k_in, 0, ctx))
    return NodeBinding(launches, workspaces=(4 * k_in * units,))


def _matmul_tn(a: Arg, b: Arg, out: Arg, m: int, n: int, k: int, ctx: BindContext,
               parts: Arg = Workspace(0)) -> NodeBinding:
    """out[m, n] = a[k, m]^T . b[k, n], the k rows cut in parts (into `parts`) if that helps."""
    tile = register_tile(n, ctx.target)
    blocks = (n // (tile["VW"] * tile["NV"]), _ceil_div(m, tile["MR"]))
    split = _split(blocks[0] * blocks[1], k, 4 * (m + n), ctx.target)
    defines = {"M": m, "N": n, **tile}
    if split == 1:
        return NodeBinding((launch("gemm.cl", "matmul_tn", (*blocks, 1),
                                   (a, b, out, Int(k)), defines),))
    return NodeBinding(
        (launch("gemm.cl", "matmul_tn", (*blocks, split), (a, b, parts, Int(k)), defines),
         _sum_parts(parts, out, m * n, split, ctx.target)),
        workspaces=(4 * split * m * n,))


def bind_dense_grad_kernel(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    k_in, units = ctx.shape(node.name)
    rows = ctx.numel(x) // k_in
    return _matmul_tn(Value(x), Value(dy), Value(node.name), k_in, units, rows, ctx)


def bind_maxpool2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    x, dy = node.inputs
    d = _window_defines(node.attrs, ctx.shape(x), ctx.shape(dy), ctx.target)
    args = (Value(x), Value(dy), Value(node.name), Int(ctx.batch))
    if d["SH"] < d["KH"] or d["SW"] < d["KW"]:  # overlapping windows: gather
        return NodeBinding((launch("pool.cl", "maxpool2d_grad", _flat(ctx.numel(x) // d["VW"]),
                                   args, d),))
    # Disjoint windows: scatter from each window, after zeroing the cells no window covers.
    covered = (d["SH"] == d["KH"] and d["SW"] == d["KW"] and d["OH"] * d["SH"] - d["PT"] >= d["H"]
               and d["OW"] * d["SW"] - d["PL"] >= d["W"])
    n = ctx.numel(x)
    zero = () if covered else (
        launch("elementwise.cl", "zero", _flat(n), (Value(node.name), Int(n))),)
    return NodeBinding(zero + (launch("pool.cl", "maxpool2d_grad_scatter",
                                      _flat(ctx.numel(dy) // d["VW"]), args, d),))


def bind_avgpool2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    dy = node.inputs[0]
    d = _window_defines(node.attrs, ctx.shape(node.name), ctx.shape(dy), ctx.target)
    return NodeBinding((launch("pool.cl", "avgpool2d_grad",
                               _flat(ctx.numel(node.name) // d["VW"]),
                               (Value(dy), Value(node.name), Int(ctx.batch)), d),))


def bind_global_avgpool2d_grad(node: Node, ctx: BindContext) -> NodeBinding:
    n, h, w, c = ctx.shape(node.name)
    defines = {"HW": h * w, "C": c, "VW": vector_width(c, ctx.target)}
    return NodeBinding((launch("pool.cl", "global_avgpool2d_grad",
                               _flat(n * h * w * c // defines["VW"]),
                               (Value(node.inputs[0]), Value(node.name), Int(n)), defines),))


def bind_slice(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    in_shape = ctx.shape(x)
    axis = node.attrs["axis"] % len(in_shape)
    start, stop = node.attrs["start"], node.attrs["stop"]
    return NodeBinding((_copy_block(x, node.name, in_shape, axis, stop - start, in_shape[axis],
                                    start, stop - start, 0),))


def bind_dropout_mask(node: Node, ctx: BindContext) -> NodeBinding:
    """dropout_train on x and dropout_grad on dy: the same kernel, the same mask."""
    n = ctx.numel(node.name)
    rate = node.attrs["rate"]
    args = (Value(node.inputs[0]), Value(node.name), Int(n),
            UInt(node.attrs["seed"] & 0xFFFFFFFF), STEP, Float(rate), Float(1.0 - rate))
    return NodeBinding((launch("random.cl", "dropout", _flat(n), args),))


def bind_batchnorm_stats(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    cols = ctx.shape(node.name)[-1]
    rows = ctx.numel(x) // cols
    out = Value(node.name)
    means, work = _column_sum(Value(x), NULL, NULL, 0.0, out, rows, cols, 0, ctx, 1.0 / rows)
    variances, _ = _column_sum(Value(x), NULL, out, 0.0, out, rows, cols, 1, ctx, 1.0 / rows,
                               out_offset=cols)
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
    args = (Value(x), Value(stats), gamma, beta, Value(node.name), Int(n), Int(cols),
            Float(node.attrs["epsilon"]))
    defines = {"HAS_GAMMA": int(gamma != NULL), "HAS_BETA": int(beta != NULL)}
    return NodeBinding((launch("batchnorm.cl", "batchnorm_train", _flat(n), args, defines),))


def bind_batchnorm_grad_input(node: Node, ctx: BindContext) -> NodeBinding:
    x, stats, dy = node.inputs[:3]
    gamma = Value(node.inputs[3]) if len(node.inputs) > 3 else NULL
    n, cols = ctx.numel(node.name), ctx.shape(node.name)[-1]
    rows = n // cols
    eps = node.attrs["epsilon"]
    sums = Workspace(1)
    dy_sum, work = _column_sum(Value(dy), NULL, NULL, eps, sums, rows, cols, 0, ctx)
    dyx_sum, _ = _column_sum(Value(x), Value(dy), Value(stats), eps, sums, rows, cols, 2, ctx,
                             out_offset=cols)
    args = (Value(x), Value(stats), Value(dy), gamma, sums, Value(node.name), Int(n), Int(cols),
            Float(eps), Float(1.0 / rows))
    final = launch("batchnorm.cl", "batchnorm_grad_input", _flat(n), args,
                   {"HAS_GAMMA": int(gamma != NULL), "HAS_BETA": 0})
    return NodeBinding(dy_sum + dyx_sum + (final,), workspaces=(work, 4 * 2 * cols))


def bind_batchnorm_grad_gamma(node: Node, ctx: BindContext) -> NodeBinding:
    x, stats, dy = node.inputs
    cols = ctx.shape(node.name)[-1]
    rows = ctx.numel(x) // cols
    launches, work = _column_sum(Value(x), Value(dy), Value(stats), node.attrs["epsilon"],
                                 Value(node.name), rows, cols, 2, ctx)
    return NodeBinding(launches, workspaces=(work,))


# ------------------------------------------------------------------ losses


def _rows_cols(ctx: BindContext, value: str) -> tuple[int, int]:
    shape = ctx.shape(value)
    return prod(shape[:-1]), shape[-1]


def _sum_all(src: Arg, out: Arg, n: int, scale: float) -> Launch:
    return launch("reduce.cl", "sum_all", (1,), (src, out, Int(n), Float(scale)))


def bind_row_loss(node: Node, ctx: BindContext) -> NodeBinding:
    """A loss: one value per row into a workspace, then their mean."""
    pred, target = node.inputs
    rows, cols = _rows_cols(ctx, pred)
    defines = {"SPARSE": int(bool(node.attrs.get("sparse", False)))}
    per_row = launch("softmax.cl", node.op, _flat(rows),
                     (Value(pred), Value(target), Workspace(0), Int(rows), Int(cols)), defines)
    scale = 1.0 / (rows * cols) if node.op == "mean_squared_error" else 1.0 / rows
    return NodeBinding((per_row, _sum_all(Workspace(0), Value(node.name), rows, scale)),
                       workspaces=(4 * rows,))


def bind_row_loss_grad(node: Node, ctx: BindContext) -> NodeBinding:
    pred, target = node.inputs
    rows, cols = _rows_cols(ctx, pred)
    defines = {"SPARSE": int(bool(node.attrs.get("sparse", False)))}
    return NodeBinding((launch("softmax.cl", node.op, _flat(rows),
                               (Value(pred), Value(target), Value(node.name), Int(rows),
                                Int(cols), Float(1.0 / rows)), defines),))


def bind_mean_squared_error_grad(node: Node, ctx: BindContext) -> NodeBinding:
    pred, target = node.inputs
    n = ctx.numel(pred)
    return NodeBinding((launch("softmax.cl", "mean_squared_error_grad", _flat(n),
                               (Value(pred), Value(target), Value(node.name), Int(n),
                                Float(1.0 / n))),))


# ------------------------------------------------------------------ updates


def bind_moving_average_update(node: Node, ctx: BindContext) -> NodeBinding:
    moving, stats = node.inputs
    n = ctx.numel(moving)
    args = (Value(moving), Value(stats), Int(n), Int(node.attrs["index"]),
            Float(node.attrs["momentum"]))
    return NodeBinding((launch("optimizer.cl", "moving_average_update", _flat(n), args),))


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
    return NodeBinding((launch("optimizer.cl", node.op, _flat(n), args, defines),))


# ------------------------------------------------------------------ the table

Binder = Callable[[Node, BindContext], NodeBinding]

BINDERS: dict[str, Binder] = {
    # layers
    "input": bind_input,
    "conv2d": bind_conv2d,
    "maxpool2d": bind_pool,
    "avgpool2d": bind_pool,
    "global_avgpool2d": bind_global_avgpool2d,
    "dense": bind_dense,
    "flatten": bind_view,
    "dropout": bind_view,
    "batchnorm": bind_batchnorm,
    "activation": bind_activation,
    "add": bind_add,
    "concatenate": bind_concatenate,
    # training
    "activation_grad": bind_activation_grad,
    "conv2d_grad_input": bind_conv2d_grad_input,
    "conv2d_grad_kernel": bind_conv2d_grad_kernel,
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
    # losses
    "softmax_cross_entropy": bind_row_loss,
    "softmax_cross_entropy_grad": bind_row_loss_grad,
    "cross_entropy": bind_row_loss,
    "cross_entropy_grad": bind_row_loss_grad,
    "mean_squared_error": bind_row_loss,
    "mean_squared_error_grad": bind_mean_squared_error_grad,
    # updates
    "moving_average_update": bind_moving_average_update,
    "sgd_update": bind_optimizer_update,
    "adam_update": bind_optimizer_update,
    "nadam_update": bind_optimizer_update,
}


def bind_node(node: Node, ctx: BindContext) -> NodeBinding:
    try:
        binder = BINDERS[node.op]
    except KeyError:
        raise NotImplementedError(f"no OpenCL binding for op '{node.op}'") from None
    return binder(node, ctx)
