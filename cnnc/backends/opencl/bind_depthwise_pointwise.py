"""Binder of depthwise_pointwise (cnnc/ir/depthwise_pointwise.py): node -> one
kernels/depthwise_pointwise.cl launch (after each `_bn` part's hoisted batchnorm_fold), and its
table `BINDERS`.

The register block is chosen from the device: the pointwise part's VW * NV channels (VW the
widest vector dividing its K filters, as many vectors as make NR = K up to four, so that each
depthwise value is computed once), the depthwise slice VD the widest vector dividing its C * M
channels, and MR the most pixels (8, 4, 2, 1) whose accumulators, depthwise slices and weight
vectors fit the CPU's vector registers (a GPU: its rows per work-item).
"""

from __future__ import annotations

from cnnc.backends.opencl.bind_depthwise_direct import geometry_of
from cnnc.backends.opencl.bind_fused import bn_fold
from cnnc.backends.opencl.launches import (
    NULL,
    Arg,
    BindContext,
    Binder,
    Int,
    Launch,
    NodeBinding,
    Value,
    Workspace,
    launch,
)
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import gemm_grid, registers_used, vector_width
from cnnc.intmath import ceil_div
from cnnc.ir.activations import kernel_defines
from cnnc.ir.depthwise_pointwise import parts
from cnnc.ir.fused import FOLDED_LAYER
from cnnc.ir.graph import Node

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
    x = node.inputs[0]
    dw, pw = parts(node, ctx.shape(x))
    geo = geometry_of(dw.attrs, ctx.shape(x))
    channels, filters = dw.shape[-1], node.shape[-1]
    folds_dw, dw_w, dw_b, sizes_dw = _weights(dw, ctx, channels, 0)
    folds_pw, pw_w, pw_b, sizes_pw = _weights(pw, ctx, filters, len(sizes_dw))
    tile = block(filters, channels, ctx.target)
    pixels = ctx.batch * geo["OH"] * geo["OW"]
    grid, group = gemm_grid(pixels, filters, tile, False, ctx.target)
    dw_act, pw_act = dw.attrs["activation"], pw.attrs["activation"]
    act = pw_act if pw_act != "linear" else dw_act
    defines = {**geo, **tile, "K": filters, **kernel_defines(act),
               "DW_BIAS": int(dw_b != NULL), "PW_BIAS": int(pw_b != NULL),
               "DW_ACT": int(dw_act != "linear"), "PW_ACT": int(pw_act != "linear")}
    args = (Value(x), dw_w, dw_b, pw_w, pw_b, Value(node.name), Int(ctx.batch))
    fused = launch("depthwise_pointwise.cl", "depthwise_pointwise", grid, args, defines, group)
    workspaces = (*sizes_dw, *sizes_pw)
    return NodeBinding((*folds_dw, *folds_pw, fused), workspaces=workspaces,
                       constants=tuple(range(len(workspaces))))


BINDERS: dict[str, Binder] = {"depthwise_pointwise": bind_depthwise_pointwise}
