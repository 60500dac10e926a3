"""Binder of conv2d_maxpool and conv2d_avgpool (cnnc/ir/conv_maxpool.py): node -> launches, and
its table `BINDERS`. An average pooling's stores get -D POOL_AVG=1 too (the sum of each whole
window's four cells over four instead of their max).

The node runs its convolution's own binding (algorithms.py, bind_fused.py or bind_residual.py,
with whatever variant the tuner chose for the convolution: Winograd, the row kernel, a GEMM) on
a node `<name>/conv` of the convolution's shape, and then the launches that store that map
pool as they store: each gets -D POOL=1 POOL_H POOL_W (and a grid of pooled rows where its
work-items are row blocks) and writes the node's pooled value instead. The kernels that can
are `POOLING_STORES`' (winograd.cl's output transforms, whose tiles hold whole 2x2 windows;
conv2d_rows.cl, a work-item taking the two rows of a pooled row). Any other variant (the
implicit GEMM, im2col + matmul) is unfused, never computed elsewhere: its launches store the
map into a workspace and pool.cl's maxpool2d pools it, the two launches of the graph without
the fusion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from cnnc.backends.opencl.algorithms import BINDERS as ALGORITHM_BINDERS
from cnnc.backends.opencl.bind_depthwise_direct import row_block, rows_group
from cnnc.backends.opencl.bind_fused import BINDERS as FUSED_BINDERS
from cnnc.backends.opencl.bind_layers import bind_pool
from cnnc.backends.opencl.bind_residual import BINDERS as RESIDUAL_BINDERS
from cnnc.backends.opencl.launches import (
    Arg,
    BindContext,
    Binder,
    Launch,
    NodeBinding,
    Value,
    Workspace,
    redirect,
)
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import accumulator_registers
from cnnc.errors import InternalError
from cnnc.ir.conv_maxpool import CONV_OPS, parts, pooled_geometry
from cnnc.ir.graph import Node

_CONV_BINDERS: dict[str, Binder] = {
    op: {**ALGORITHM_BINDERS, **FUSED_BINDERS, **RESIDUAL_BINDERS}[op] for op in CONV_OPS}

# A launch storing the convolution's map, made to store the pooled map (its -D options
# `pool`) by the kernel's rule; None where that variant cannot pool.
Pooling = Callable[[Launch, Mapping[str, int], BindContext, Mapping[str, Any]], "Launch | None"]


def _defines(lau: Launch, more: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted({**lau.define_map, **more, "POOL": 1}.items()))


def _tiles(lau: Launch, pool: Mapping[str, int], ctx: BindContext,
           variant: Mapping[str, Any]) -> Launch | None:
    """winograd_output, winograd_fused: the same work-items, each tile's windows stored. An
    odd tile (F(7x7)) holds whole windows only where one tile covers the map: else None."""
    d = lau.define_map
    if d["WINO_M"] % 2 and (d["TH"] > 1 or d["TW"] > 1):
        return None
    return replace(lau, defines=_defines(lau, pool))


def pooled_row_block(tile: Mapping[str, int], pool_w: int, target: Target) -> int:
    """Pooled pixels per conv2d_rows work-item: at most half the variant's MR pixels, and on a
    CPU as many whose accumulators (2 per pooled pixel) and maxima (1) leave two vector
    registers free, as rows_tile's blocks do; then the pooled row cut most evenly. (The seed
    model's stem, 7 float16 pixels unpooled: 3 pooled pixels, 18 registers, ran 0.8x the
    unpooled kernel and pool.cl together; 2, in 12, 1.5x; pocl, Zen 3, load 4.)"""
    half = max(1, tile["MR"] // 2)
    if target.kind == "cpu":
        while half > 1 and accumulator_registers(
                {**tile, "MR": 3 * half}, target) > target.vector_registers - 2:
            half -= 1
    return row_block(pool_w, half)


def _rows(lau: Launch, pool: Mapping[str, int], ctx: BindContext,
          variant: Mapping[str, Any]) -> Launch:
    """conv2d_rows: row blocks of MR pixels in pairs of rows, MR even (pooled_row_block)."""
    d = lau.define_map
    # pixel vectors (-D PX): a vector's VW lanes hold the pixels of VW / 2 windows
    half = (row_block(pool["POOL_W"], d["VW"] // 2) if d.get("PX")
            else pooled_row_block(d, pool["POOL_W"], ctx.target))
    blocks = ctx.batch * pool["POOL_H"] * -(-pool["POOL_W"] // half)
    channel_blocks = lau.global_size[1]
    group = rows_group(blocks, channel_blocks, ctx.target, variant) if lau.local_size else None
    grid = (-(-blocks // group[0]) * group[0] if group else blocks, channel_blocks)
    return replace(lau, defines=_defines(lau, {**pool, "MR": 2 * half}), global_size=grid,
                   local_size=group)


POOLING_STORES: dict[tuple[str, str], Pooling] = {
    ("winograd.cl", "winograd_output"): _tiles,
    ("winograd.cl", "winograd_fused"): _tiles,
    ("conv2d_rows.cl", "conv2d_rows"): _rows,
}
"""The kernels that pool as they store (-D POOL=1), each with how its launch changes."""



def _inner(node: Node, ctx: BindContext) -> tuple[Node, Node, BindContext]:
    """The convolution and pooling nodes, and a context that knows the convolution's map,
    that a pooling reads it (`<node>/conv:pool`, never bound: the algorithms' rules see the
    graph the tuner timed, tuning_graph's) and gives it the node's variant."""
    shapes = tuple(ctx.graph.shape_of(x) for x in node.inputs)
    conv, pool = parts(node, shapes)
    reader = replace(pool, name=f"{conv.name}:pool")
    inner = replace(ctx, graph=ctx.graph.with_nodes((*ctx.graph.nodes, conv, reader)),
                    variants={**ctx.variants, conv.name: ctx.variant(node)})
    return conv, pool, inner


def bind_conv2d_maxpool(node: Node, ctx: BindContext) -> NodeBinding:
    conv, pool_node, inner_ctx = _inner(node, ctx)
    inner = _CONV_BINDERS[conv.op](conv, inner_ctx)
    out = Value(conv.name)
    stores = [i for i, lau in enumerate(inner.launches) if out in lau.args]
    if not stores:
        raise InternalError(f"node '{node.name}': no launch of its {conv.op} binding stores "
                            "its map")
    _, oh, ow, _ = inner_ctx.shape(conv.name)
    pool = pooled_geometry(node.attrs, (oh, ow))
    if node.op == "conv2d_avgpool":  # whole windows (the op's rule): each sum over 4
        pool["POOL_AVG"] = 1
    launches = list(inner.launches)
    for i in stores:
        rule = POOLING_STORES.get((launches[i].file, launches[i].kernel))
        pooled = rule(launches[i], pool, ctx, ctx.variant(node)) if rule else None
        if pooled is None:
            return _unfused(conv, inner, pool_node, inner_ctx)
        launches[i] = redirect(pooled, {out: Value(node.name)})
    return replace(inner, launches=tuple(launches))


def _unfused(conv: Node, inner: NodeBinding, pool_node: Node,
             inner_ctx: BindContext) -> NodeBinding:
    """The convolution's launches storing its map into a workspace, pool.cl pooling it."""
    work = Workspace(len(inner.workspaces))
    names: dict[Arg, Arg] = {Value(conv.name): work}
    pool = bind_pool(pool_node, inner_ctx)
    launches = tuple(redirect(lau, names) for lau in (*inner.launches, *pool.launches))
    return replace(inner, launches=launches,
                   workspaces=(*inner.workspaces, inner_ctx.numel(conv.name)))


BINDERS: dict[str, Binder] = {"conv2d_maxpool": bind_conv2d_maxpool,
                              "conv2d_avgpool": bind_conv2d_maxpool}
