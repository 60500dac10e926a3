"""The depthwise convolutions' gradient algorithms (registered in algorithms.py, which binds
them): the direct kernels of kernels/depthwise_grad.cl, the defaults, and the grouped conv2d
gradients they also are (conv2d.cl's, by conv2d's bindings: the (KH, KW, C, M) kernel is the
(KH, KW, 1, C*M) kernel of that conv2d, byte for byte). Separable convolutions' depthwise parts
use the same gradient ops. The forward op's algorithms are in bind_depthwise_direct.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cnnc.backends.opencl.bind_depthwise_direct import GROUPED
from cnnc.backends.opencl.bind_gradients import (
    bind_conv2d_grad_input_by_phases,
    bind_conv2d_grad_input_direct,
    bind_conv2d_grad_kernel_direct,
    conv2d_grad_input_gemm,
    conv2d_grad_kernel_gemm,
    strided,
)
from cnnc.backends.opencl.edge_shapes import _spatial_edges
from cnnc.backends.opencl.launches import BindContext, Int, NodeBinding, Value, Workspace, launch
from cnnc.backends.opencl.primitives import conv_geometry, with_parts_summed
from cnnc.backends.opencl.tiling import (
    block_grid,
    gemm_grid,
    register_tile,
    tuned_row_groups,
    tuned_split,
    tuned_tile,
)
from cnnc.backends.opencl.tunable import EdgeShape, Gemm, Variant
from cnnc.intmath import ceil_div
from cnnc.ir.graph import Graph, Node
from cnnc.ir.layers import depthwise_as_conv2d

_GEOMETRY = ("H", "W", "C", "KH", "KW", "SH", "SW", "DH", "DW", "OH", "OW", "PT", "PL")


def _geometry(node: Node) -> dict[str, int]:
    """depthwise_grad.cl's -D geometry of a gradient node (its attrs hold the input's shape)."""
    shape = (1, *node.attrs["input_shape"])
    geo = conv_geometry(depthwise_as_conv2d(node.attrs, shape[-1]), shape)
    return {**{k: geo[k] for k in _GEOMETRY}, "M": node.attrs["depth_multiplier"]}


# ---------------------------------------------------------------- direct: the input gradient


def grad_input_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The direct input gradient as a GEMM for the tuner's register blocks: rows the input
    pixels, columns the input channels, each a sum over its KH * KW * M taps (no local tiles)."""
    geo = _geometry(node)
    rows = ctx.batch * geo["H"] * geo["W"]
    return Gemm(geo["C"], rows, geo["KH"] * geo["KW"] * geo["M"], split=False, local=False)


def bind_grad_input_direct(node: Node, ctx: BindContext) -> NodeBinding:
    """dx gathered by depthwise_grad.cl: each input pixel's channels sum the dy that read them."""
    dy, kernel = node.inputs
    geo = _geometry(node)
    variant = ctx.variant(node)
    gemm = grad_input_gemm(node, ctx, variant)
    tile = tuned_tile(gemm.cols, ctx.target, variant)
    grid, group = gemm_grid(gemm.rows, gemm.cols, tile, False, ctx.target, variant)
    args = (Value(dy), Value(kernel), Value(node.name), Int(ctx.batch))
    return NodeBinding((launch("depthwise_grad.cl", "depthwise_grad_input", grid, args,
                               {**geo, **tile}, group),))


# ---------------------------------------------------------------- direct: the kernel gradient


def grad_kernel_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The direct kernel gradient as a GEMM: rows the KH * KW taps, columns the output channels,
    the reduction over every output pixel, split into chunks of output rows added up after."""
    geo = _geometry(node)
    pixels = ctx.batch * geo["OH"] * geo["OW"]
    step = 4 * (geo["C"] + geo["C"] * geo["M"])
    return Gemm(geo["C"] * geo["M"], geo["KH"] * geo["KW"], pixels, split=True, local=False,
                step_bytes=step)


def taps_per_item(taps: int, mr: int) -> int:
    """The block's MR taps spread evenly over as many blocks as MR needs (9 taps at MR = 8:
    two blocks of 5, not 8 and 1, which would read dy twice for one tap)."""
    return ceil_div(taps, ceil_div(taps, mr))


def bind_grad_kernel_direct(node: Node, ctx: BindContext) -> NodeBinding:
    """dw by depthwise_grad.cl in chunks of output rows, the chunks' partial sums added up in
    order by reduce.cl (one chunk writes dw itself)."""
    x, dy = node.inputs
    geo = _geometry(node)
    variant = ctx.variant(node)
    gemm = grad_kernel_gemm(node, ctx, variant)
    tile = tuned_tile(gemm.cols, ctx.target, variant)
    tile["MR"] = taps_per_item(gemm.rows, tile["MR"])
    blocks = block_grid(gemm.rows, gemm.cols, tile)
    split = tuned_split(blocks[0] * blocks[1], gemm.reduction, gemm.step_bytes, ctx.target,
                        variant)
    grid = (*blocks, min(split, ctx.batch * geo["OH"]))
    out, parts = Value(node.name), Workspace(0)
    args = (Value(x), Value(dy), out if grid[2] == 1 else parts, Int(ctx.batch))
    main = launch("depthwise_grad.cl", "depthwise_grad_kernel", grid, args, {**geo, **tile},
                  tuned_row_groups(grid, ctx.target, variant))
    return with_parts_summed(main, parts, out, gemm.rows * gemm.cols, ctx.target)


# ---------------------------------------------------------------- grouped conv2d gradients


def _as_conv2d(node: Node) -> Node:
    """The grouped conv2d gradient node a depthwise one is."""
    shape = node.attrs["input_shape"]
    attrs = depthwise_as_conv2d(node.attrs, shape[-1]).replace(input_shape=shape)
    return replace(node, op=node.op.replace("depthwise_conv2d", "conv2d"), attrs=attrs)


def bind_grad_input_grouped(node: Node, ctx: BindContext) -> NodeBinding:
    """dx as conv2d's: by phases where strided (its default), else all taps directly."""
    conv = _as_conv2d(node)
    if strided(conv, ctx):
        return bind_conv2d_grad_input_by_phases(conv, ctx)
    return bind_conv2d_grad_input_direct(conv, ctx)


def bind_grad_kernel_grouped(node: Node, ctx: BindContext) -> NodeBinding:
    return bind_conv2d_grad_kernel_direct(_as_conv2d(node), ctx)


def grad_input_grouped_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """The grouped path with its conv2d gradient's default block."""
    gemm = conv2d_grad_input_gemm(_as_conv2d(node), ctx, {})
    return [{"algo": GROUPED, **register_tile(gemm.cols, ctx.target)}]


def grad_kernel_grouped_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """The grouped path with its conv2d gradient's default block (and split)."""
    gemm = conv2d_grad_kernel_gemm(_as_conv2d(node), ctx, {})
    return [{"algo": GROUPED, **register_tile(gemm.cols, ctx.target)}]


# ---------------------------------------------------------------- edge shapes


def grad_input_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """Odd spatial sizes and a 1x1 output; the channels (the columns) stay."""
    a = node.attrs
    c = a["input_shape"][-1]
    f = c * a["depth_multiplier"]
    dy, kernel = node.inputs
    edges = []
    for label, eh, ew, batch in _spatial_edges(a):
        geo = _geometry(replace(node, attrs=a.replace(input_shape=(eh, ew, c))))
        edges.append(EdgeShape(label, {dy: (geo["OH"], geo["OW"], f)},
                               {kernel: (*a["kernel_size"], c, a["depth_multiplier"])},
                               a.replace(input_shape=(eh, ew, c)), batch))
    return edges


def grad_kernel_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """Odd spatial sizes and a 1x1 output; the channels (the columns) stay."""
    a = node.attrs
    c = a["input_shape"][-1]
    f = c * a["depth_multiplier"]
    x, dy = node.inputs
    edges = []
    for label, eh, ew, batch in _spatial_edges(a):
        attrs = a.replace(input_shape=(eh, ew, c))
        geo = _geometry(replace(node, attrs=attrs))
        edges.append(EdgeShape(label, {x: (eh, ew, c), dy: (geo["OH"], geo["OW"], f)}, {},
                               attrs, batch))
    return edges

