"""Binder of pointwise_mlp (cnnc/ir/pointwise_mlp.py): node -> one kernels/pointwise_mlp.cl
launch (after each `_bn` part's hoisted batchnorm_fold), the op's one algorithm (registered in
algorithms.py, so the tuner sizes its register block and work-groups).

The register block is a GEMM's (tiling.register_tile) over the columns both parts' blocks
must divide: the greatest common divisor of the hidden and output channels (so a hidden width
that no vector divides takes narrower vectors, never a partial block). MR is cut until each
work-item's hidden array, MR * F floats, is within HIDDEN_FLOATS. On a CPU each work-item is
its own work-group (a variant may group several, or leave them to the driver); on a GPU the hidden arrays live in local
memory, one slice per work-item of a work-group as large as the device's local memory and
work-group size allow (LOCAL_HIDDEN), and MR is 1 there.
"""

from __future__ import annotations

from dataclasses import replace
from math import gcd
from typing import Any

from cnnc.backends.opencl.bind_depthwise_pointwise import STAGED_FLOATS
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
from cnnc.backends.opencl.primitives import bn_fold
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import register_tile, registers_used, tuned_tile
from cnnc.backends.opencl.tunable import EdgeShape, Gemm, Variant, tile_text
from cnnc.intmath import ceil_div
from cnnc.ir.activations import kernel_defines
from cnnc.ir.fused import FOLDED_LAYER
from cnnc.ir.graph import Graph, Node
from cnnc.ir.pointwise_mlp import has_residual, parts
from cnnc.ir.residual import LAYER_OF

# A work-item's hidden array at most this many floats (as the staged depthwise_pointwise
# kernel's: half a Zen 3 core's L1 data cache, the other half for the weights it streams).
HIDDEN_FLOATS = STAGED_FLOATS
# A GPU work-group's work-items at most (each holds MR * F floats of local memory).
GPU_GROUP = 64
# Work-items per work-group on a CPU (the variant key "mlp_group"): 1 unless tuned.
KEYS = {"mlp_group": (1, 256)}


def _sizes(node: Node, ctx: BindContext) -> tuple[int, int, int, int]:
    """(pixels, C, F, K): the launch's rows, input, hidden and output channels."""
    _, h, w, c = ctx.shape(node.inputs[0])
    hidden = node.attrs["expand"]["filters"]
    return ctx.batch * h * w, c, hidden, node.shape[-1]


def mlp_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The launch as the tuner sees it: rows the pixels, columns gcd(F, K) (which a block's
    columns must divide: it runs over both parts' channels), and as the reduction what makes
    the FLOPs both parts' (C * F + F * K multiply-adds a pixel)."""
    rows, c, f, k = _sizes(node, ctx)
    cols = gcd(f, k)
    return Gemm(cols, rows, (c * f + f * k) // cols, split=False, local=False)


def default_tile(cols: int, target: Target) -> dict[str, int]:
    """register_tile over the shared columns; on a GPU one pixel a work-item (each holds its
    pixels' F hidden values in local memory)."""
    tile = register_tile(cols, target)
    return tile if target.kind == "cpu" else {**tile, "MR": 1}


def tile_of(node: Node, ctx: BindContext) -> dict[str, int]:
    """default_tile with the variant's MR, VW and NV, MR cut to what HIDDEN_FLOATS holds."""
    _, _, f, k = _sizes(node, ctx)
    tile = tuned_tile(gcd(f, k), ctx.target, ctx.variant(node), base=default_tile)
    while tile["MR"] > 1 and tile["MR"] * f > HIDDEN_FLOATS:
        tile["MR"] //= 2
    return tile


def local_group(hidden_floats: int, target: Target) -> int:
    """A GPU work-group's work-items: the most (a power of two, up to GPU_GROUP) whose hidden
    arrays of `hidden_floats` each fit the device's local memory and work-group size; 0 where
    not even one fits (the arrays are private then)."""
    group = GPU_GROUP
    while group and (group * hidden_floats * 4 > target.limits.local_memory
                     or not target.limits.group_fits((group, 1))):
        group //= 2
    return group


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


def _project_layer(project: Node) -> Node:
    """The projection as its layer (conv2d or conv2d_bn), its residual input dropped: what
    bn_fold and the parameters read."""
    if project.op in LAYER_OF:
        return replace(project, op=LAYER_OF[project.op], inputs=project.inputs[:1])
    return project


def bind_pointwise_mlp(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    rows, c, f, k = _sizes(node, ctx)
    expand, project = parts(node, ctx.shape(x))
    project = _project_layer(project)
    tile = tile_of(node, ctx)
    target = ctx.target
    group_size = 0
    variant = ctx.variant(node)
    if target.kind == "cpu":
        # row_groups 0 (the tuner's): the driver's work-groups
        group_size = int(variant.get("mlp_group", 1)) if variant.get("row_groups", 1) else 0
        local_hidden = 0
    else:
        local_hidden = local_group(tile["MR"] * f, target)
        group_size = local_hidden
    blocks = ceil_div(rows, tile["MR"])
    group: tuple[int, int] | None = None
    if group_size:
        group_size = min(group_size, blocks)
        while group_size > 1 and not target.limits.group_fits((group_size, 1)):
            group_size //= 2
        if local_hidden:
            local_hidden = group_size
        group = (group_size, 1)
        blocks = ceil_div(blocks, group_size) * group_size
    folds_e, w1, b1, sizes_e = _weights(expand, ctx, f, 0)
    folds_p, w2, b2, sizes_p = _weights(project, ctx, k, len(sizes_e))
    act1, act2 = expand.attrs["activation"], project.attrs["activation"]
    act = act2 if act2 != "linear" else act1
    residual = has_residual(node.attrs)
    defines = {"C": c, "F": f, "K": k, **tile, **kernel_defines(act),
               "B1": int(b1 != NULL), "B2": int(b2 != NULL),
               "ACT1": int(act1 != "linear"), "ACT2": int(act2 != "linear"),
               "HAS_RESIDUAL": int(residual), "LOCAL_HIDDEN": local_hidden}
    args: tuple[Arg, ...] = (Value(x), w1, b1, w2, b2, Value(node.name), Int(rows))
    if residual:
        args = (*args, Value(node.inputs[1]))
    fused = launch("pointwise_mlp.cl", "pointwise_mlp", (blocks, 1), args, defines, group)
    workspaces = (*sizes_e, *sizes_p)
    return NodeBinding((*folds_e, *folds_p, fused), workspaces=workspaces,
                       constants=tuple(range(len(workspaces))))


def mlp_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """CPUs: the default block one work-item a group, then with 16 a group (pixel blocks side by
    side on one core, sharing the weights in its cache: 1.0-1.3x as fast at convnext_mini's 7x7
    blocks in side-by-side runs on a loaded 2-core Zen 3, the tuner's to confirm), other blocks
    of more or fewer pixels within the vector registers and the hidden array's bound, then the
    default with 4 a group. A GPU's work-groups are set by its local memory: no variants."""
    target = ctx.target
    if target.kind != "cpu":
        return []
    _, _, f, k = _sizes(node, ctx)
    cols = gcd(f, k)
    default = default_tile(cols, target)
    out = [{"algo": NAME, **default}, {"algo": NAME, **default, "mlp_group": 16}]
    vw = default["VW"]
    for mr, nv in ((6, 2), (8, 1), (2, 4), (3, 4), (4, 1)):
        row = {"MR": mr, "VW": vw, "NV": nv}
        variant = {"algo": NAME, **row}
        if (cols % (vw * nv) or variant in out or mr * f > HIDDEN_FLOATS
                or registers_used(row, target) > target.vector_registers):
            continue
        out.append(variant)
    out.append({"algo": NAME, **default, "mlp_group": 4})
    return out


def mlp_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """The node's own shapes at batches 3 and 1, and at batch 3 on a 3x5 map (15 pixels: a
    partial pixel block whatever MR is)."""
    x = node.inputs[0]
    c, k = graph.shape_of(x)[-1], node.shape[-1]
    state = {v: tuple(graph.state_map[v].shape) for v in node.params}

    def inputs(h: int, w: int) -> dict[str, tuple[int, ...]]:
        shapes = {x: (h, w, c)}
        if has_residual(node.attrs):
            shapes[node.inputs[1]] = (h, w, k)
        return shapes

    _, h, w, _ = graph.shape_of(x)
    return [EdgeShape(f"batch {b}, as built", inputs(h, w), state, node.attrs, b)
            for b in (3, 1)] + [EdgeShape("3x5 map, batch 3", inputs(3, 5), state, node.attrs, 3)]


def describe(variant: Variant) -> str:
    group = f" mlp_group={variant['mlp_group']}" if "mlp_group" in variant else ""
    return f"pointwise mlp {tile_text(variant)}{group}"


NAME = "mlp"
