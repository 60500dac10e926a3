"""Binder of pointwise_depthwise (cnnc/ir/pointwise_depthwise.py): node -> one
kernels/pointwise_depthwise.cl launch (after each `_bn` part's hoisted batchnorm_fold), each
work-item OR output rows of one image by VW channels, the expanded rows they read computed into
a private array first; and the table `BINDERS`."""

from __future__ import annotations

from cnnc.backends.opencl.bind_depthwise_direct import geometry_of, row_block
from cnnc.backends.opencl.bind_depthwise_pointwise import _weights as part_weights
from cnnc.backends.opencl.launches import NULL, BindContext, Int, NodeBinding, Value, launch
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import vector_width
from cnnc.intmath import ceil_div
from cnnc.ir.activations import kernel_defines
from cnnc.ir.graph import Node
from cnnc.ir.pointwise_depthwise import NAME, parts

# A work-item's private array of expanded values, ER rows by EW columns by VW channels, at most
# this many floats (16 KiB: half an L1 data cache, the rest for the input rows it streams);
# OR, the output rows, is cut until it fits.
PRIVATE_FLOATS = 4096
# Independent accumulators of the depthwise part (pixels of an output row), and of the
# expansion on a GPU (columns of a row): enough FMA chains to hide their latency, within the
# registers.
MOST_COLUMNS = 8
CPU_GROUP: tuple[int, int] | None = (1, 1)


def expanded_floats(geo: dict[str, int], rows: int, vw: int) -> int:
    """The private array's floats for `rows` output rows by `vw` channels."""
    er = (rows - 1) * geo["SH"] + (geo["KH"] - 1) * geo["DH"] + 1
    ew = (geo["OW"] - 1) * geo["SW"] + (geo["KW"] - 1) * geo["DW"] + 1
    return er * ew * vw


def block(geo: dict[str, int], target: Target) -> dict[str, int]:
    """OR output rows by VW channels and the two parts' column blocks. On a CPU the widest
    vector (up to two registers) dividing the C channels and the most output rows (the whole
    image's where it fits PRIVATE_FLOATS: each expanded value then computed once), cut evenly
    (row_block); on a GPU one row by the native vector, a small private array."""
    channels = geo["C"]
    if target.kind != "cpu":
        vw, rows = vector_width(channels, target), 1
    else:
        vw = next(v for v in (16, 8, 4, 2, 1)
                  if v <= 2 * target.max_vector and channels % v == 0)
        rows = geo["OH"]
        while rows > 1 and expanded_floats(geo, rows, vw) > PRIVATE_FLOATS:
            rows = ceil_div(rows, 2)
        rows = row_block(geo["OH"], rows)
    reach = (geo["OW"] - 1) * geo["SW"] + (geo["KW"] - 1) * geo["DW"] + 1 - geo["PL"]
    columns = min(geo["W"], reach)
    return {"OR": rows, "VW": vw, "CB": row_block(columns, expansion_columns(vw, target)),
            "MR": row_block(geo["OW"], MOST_COLUMNS)}


def expansion_columns(vw: int, target: Target) -> int:
    """The most columns of the expansion a CPU work-item sums at once: as many accumulators as
    its vector registers hold, two kept for the weight and the input (the rest of the weights
    spill, each reload a load, not an instruction on the FMA ports). Measured on pocl (2-core
    Intel Xeon AVX-512), efficientnet_mini's 14x14x16 -> 96 3x3 stride-2 pair at batch 256:
    14 columns (the whole row) 1.12 ms, two blocks of 7 1.40 ms, 4 (four blocks) 1.91 ms; on
    AVX2, 16-float vectors take two registers each and this stays at 7."""
    if target.kind != "cpu":
        return MOST_COLUMNS
    return (target.vector_registers - 2) // ceil_div(vw, target.max_vector)


def bind_pointwise_depthwise(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    pw, dw = parts(node, ctx.shape(x))
    geo = geometry_of(dw.attrs, pw.shape)
    geo.pop("M")
    channels, inputs = geo["C"], ctx.shape(x)[-1]
    tile = block(geo, ctx.target)
    folds_pw, pw_w, pw_b, sizes_pw = part_weights(pw, ctx, channels, 0)
    folds_dw, dw_w, dw_b, sizes_dw = part_weights(dw, ctx, channels, len(sizes_pw))
    pw_act, dw_act = pw.attrs["activation"], dw.attrs["activation"]
    act = dw_act if dw_act != "linear" else pw_act
    defines = {**geo, **tile, "CI": inputs, **kernel_defines(act),
               "PW_BIAS": int(pw_b != NULL), "DW_BIAS": int(dw_b != NULL),
               "PW_ACT": int(pw_act != "linear"), "DW_ACT": int(dw_act != "linear")}
    grid = (channels // tile["VW"], ctx.batch * ceil_div(geo["OH"], tile["OR"]))
    # one work-item per group on a CPU: pocl keeps a whole group's private arrays on one
    # thread's stack (up to 16 KiB each here); left to choose, it picked groups that crashed
    # (a segmentation fault on efficientnet_mini's b2 pair at batch 256)
    group = CPU_GROUP if ctx.target.kind == "cpu" else None
    args = (Value(x), pw_w, pw_b, dw_w, dw_b, Value(node.name), Int(ctx.batch))
    fused = launch("pointwise_depthwise.cl", "pointwise_depthwise", grid, args, defines, group)
    workspaces = (*sizes_pw, *sizes_dw)
    return NodeBinding((*folds_pw, *folds_dw, fused), workspaces=workspaces,
                       constants=tuple(range(len(workspaces))))


BINDERS = {NAME: bind_pointwise_depthwise}
