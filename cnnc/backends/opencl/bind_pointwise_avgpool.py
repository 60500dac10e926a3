"""Binder of pointwise_avgpool (cnnc/ir/pointwise_avgpool.py): node -> launches, its one
algorithm, registered in algorithms.py (its register block and work-groups the tuner's).

One launch of pointwise_avgpool.cl, each work-item one image's block of filters, its register
block the device's GEMM block (tiling.register_tile) over the image's pixels; with a folded
batch norm (conv_op conv2d_bn), a `once` fold first (primitives.bn_fold, as bind_fused.py runs
for any conv2d_bn), and the launch reads the folded kernel and bias. A gathered convolution
(ShuffleNetV2's head) runs pointwise_avgpool_gathered.cl instead, the same work-items reading
its runs of channels from its inputs (kernels/gather.h; the inputs after the first as the
launch's last arguments). Work-groups on a CPU: a few
images' filter blocks (bind_depthwise_direct.rows_group: they share the weights, which stay in
the core's cache); a GPU's are the driver's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cnnc.backends.opencl.bind_depthwise_direct import ROWS_KEYS, row_block, rows_group
from cnnc.backends.opencl.launches import (
    NULL,
    Arg,
    BindContext,
    Int,
    Launch,
    NodeBinding,
    Value,
    Workspace,
    launch,
)
from cnnc.backends.opencl.primitives import bn_fold, gather_defines
from cnnc.backends.opencl.tiling import register_tile, tuned_tile
from cnnc.backends.opencl.tunable import EdgeShape, Gemm, Variant, tile_text
from cnnc.ir.activations import kernel_defines
from cnnc.ir.fused import FOLDED_LAYER
from cnnc.ir.gathered import LAYER_OF_GATHERED, gathered_shape
from cnnc.ir.graph import Graph, Node


def _input_shape(node: Node, shapes: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    """The shape of the input the convolution multiplies: the gathered one for a gathered
    convolution."""
    if node.attrs["conv_op"] in LAYER_OF_GATHERED:
        return gathered_shape(node.attrs["conv"], shapes)
    return shapes[0]


def bind_pointwise_avgpool(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    conv = node.attrs["conv"]
    shapes = tuple(ctx.shape(v) for v in node.inputs)
    _, h, w, c = _input_shape(node, shapes)
    f = conv["filters"]
    gathered = node.attrs["conv_op"] in LAYER_OF_GATHERED
    layer_op = LAYER_OF_GATHERED.get(node.attrs["conv_op"], node.attrs["conv_op"])
    variant = ctx.variant(node)
    tile = tuned_tile(f, ctx.target, variant)
    tile["MR"] = row_block(h * w, tile["MR"])
    blocks = f // (tile["VW"] * tile["NV"])
    group = rows_group(ctx.batch, blocks, ctx.target, variant)
    if group and ctx.batch < ctx.target.compute_units:
        # fewer images than cores: a group per filter block, so that the blocks of one image
        # spread over the cores (one group runs on one core)
        group = (1, 1)
    grid = (-(-ctx.batch // group[0]) * group[0] if group else ctx.batch, blocks)
    folds: tuple[Launch, ...] = ()
    binding: dict[str, Any] = {}
    kernel: Arg
    bias: Arg
    if layer_op in FOLDED_LAYER.values():
        # the fold as bind_fused.py's: once, into two constant workspaces
        kernel, bias = Workspace(0), Workspace(1)
        fold, size = bn_fold(replace(node, attrs=conv), ctx, f, kernel, bias)
        folds = (fold,)
        binding = {"workspaces": (size, f), "constants": (0, 1)}
    else:
        kernel = Value(node.params[0])
        bias = Value(node.params[1]) if conv["use_bias"] else NULL
    defines = {"HW": h * w, "C": c, "F": f, **tile, "HAS_BIAS": int(bias != NULL),
               **kernel_defines(conv["activation"])}
    args = (Value(x), kernel, bias, Value(node.name), Int(ctx.batch))
    name = "pointwise_avgpool"
    if gathered:
        name = "pointwise_avgpool_gathered"
        defines.update(gather_defines(conv["segments"], [s[-1] for s in shapes]))
        args += tuple(Value(v) for v in node.inputs[1:])
    main = launch(f"{name}.cl", name, grid, args, defines, group)
    return NodeBinding((*folds, main), **binding)


def pooled_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The launch as the tuner sees it: rows the pixels of every image, columns the filters
    (whose blocks must divide them), the input channels the reduction."""
    _, h, w, c = _input_shape(node, tuple(ctx.shape(v) for v in node.inputs))
    return Gemm(node.attrs["conv"]["filters"], ctx.batch * h * w, c, split=False, local=False)


def pooled_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """One image per work-group beside ROWS_GROUP's (CPU only: a GPU's are the driver's)."""
    if ctx.target.kind != "cpu":
        return []
    return [{"algo": NAME, **register_tile(pooled_gemm(node, ctx, {}).cols, ctx.target),
             "rows_group": 1}]


def pooled_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """The node's own shapes at batches 3 and 1 (a work-group past the batch, a single image),
    and at batch 3 on a 3x5 map (15 pixels: a partial pixel block); a gathered convolution's
    inputs each keep their channels."""
    state = {v: tuple(graph.state_map[v].shape) for v in node.params}
    own = {x: tuple(graph.shape_of(x)[1:]) for x in node.inputs}
    small = {x: (3, 5, graph.shape_of(x)[-1]) for x in node.inputs}
    return [EdgeShape(f"batch {b}, as built", own, state, node.attrs, b) for b in (3, 1)] + [
        EdgeShape("3x5 map, batch 3", small, state, node.attrs, 3)]


def describe(variant: Variant) -> str:
    group = f" rows_group={variant['rows_group']}" if "rows_group" in variant else ""
    return f"conv+avgpool {tile_text(variant)}{group}"


NAME = "pooled"
KEYS = ROWS_KEYS
