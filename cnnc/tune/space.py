"""The tuner's variant space: which nodes have kernel variants, and which variants each may take.

The OpenCL backend registers each tunable op's algorithms (cnnc/backends/opencl/algorithms.py);
this module builds a node's space from its op's registrations and knows no op or algorithm by
name. A variant is a small dict the binders read through `BindContext.variant(node)`
(launches.py):

    algo         the algorithm (a registration's name; absent: the op's default)
    MR, VW, NV   the register block of an algorithm's GEMM: MR rows x (VW * NV) columns per
                 work-item (tiling.py)
    row_groups   0: leave work-group shapes to the driver; 1: one row block's columns per group
    split        parts the reduction of a kernel gradient is cut into (added up after)
    local        0: no local-memory tiles on a GPU, where they would otherwise be used
    ...          keys an algorithm registers for itself (Algorithm.keys, tile_keys)

Every variant is generated within the device's properties: blocks whose columns divide the
GEMM's (so no block straddles a group), register blocks within the CPU's vector registers,
work-groups within Target.limits (row_groups and local tiles check the limits themselves, and
the runtime checks each built kernel's CL_KERNEL_WORK_GROUP_SIZE). The space is kept to about
10-20 variants per node so that a whole network tunes in about a minute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cnnc.backends.opencl.algorithms import (
    ALGORITHMS,
    TUNABLE_OPS,
    algorithms_of,
    default_algorithm,
    gemm_algorithm,
)
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.target import GRID_GROUPS, Target
from cnnc.backends.opencl.tiling import block_grid, registers_used, split_reduction
from cnnc.backends.opencl.tunable import Algorithm, Gemm, tile_text
from cnnc.ir.args import Attrs
from cnnc.ir.avgpool_dense import NAME as AVGPOOL_DENSE
from cnnc.ir.avgpool_dense import parts as avgpool_dense_parts
from cnnc.ir.conv_concat import parts as conv_concat_parts
from cnnc.ir.conv_maxpool import POOL_OF
from cnnc.ir.conv_maxpool import parts as conv_maxpool_parts
from cnnc.ir.dense_pair import NAME as DENSE_PAIR
from cnnc.ir.dense_pair import parts as dense_pair_parts
from cnnc.ir.gated import LAYER_OF_GATED
from cnnc.ir.gathered import LAYER_OF_GATHERED, gathered_shape
from cnnc.ir.graph import Graph, Node
from cnnc.ir.ops import layer_of

Variant = dict[str, Any]



def as_layer(node: Node) -> Node:
    """The node as its launches are bound: a fused node (cnnc/ir/fused.py, residual.py) as the
    layer its op stands for (bind_fused.py and bind_residual.py run that layer's binding under
    the fused node's name), others as they are."""
    if node.op in TUNABLE_OPS:  # a fused op with algorithms of its own (depthwise_pointwise)
        return node
    layer = layer_of(node.op)
    return node if layer == node.op else replace(node, op=layer)


# Every key a variant may hold, with what its value may be: the cache (cache.py) refuses any
# other key or value. The tile knobs, then the keys the registered algorithms add.
TILE_INT_KEYS: dict[str, tuple[int, int]] = {
    "MR": (1, 16),
    "VW": (1, 16),
    "NV": (1, 4),
    "row_groups": (0, 1),
    "split": (1, GRID_GROUPS[2]),
    "local": (0, 1),
}
INT_KEYS: dict[str, tuple[int, int]] = {
    **TILE_INT_KEYS, **{k: r for a in ALGORITHMS.values() for k, r in a.keys.items()},
    "chunk": (1, 2**20),  # a forward pass's batch chunk (chunking.py), not a launch's
    "companion": (0, 1)}  # 1: a forward pass runs on the device's companion (latency.py)
# Keys holding a register tile of their own (MR, VW, NV as above).
TILE_VARIANT_KEYS = tuple(dict.fromkeys(k for a in ALGORITHMS.values() for k in a.tile_keys))
ALGOS = tuple(dict.fromkeys(name for _, name in ALGORITHMS))
VECTOR_WIDTHS = (1, 2, 4, 8, 16)


def _named(variant: Mapping[str, Any]) -> Algorithm | None:
    """A registration of the variant's algorithm, any op's (those of one name describe, group
    and err alike: tests/opencl/test_algorithms.py); None without one."""
    name = variant.get("algo")
    return next((a for a in ALGORITHMS.values() if a.name == name), None)


def gemm_of(node: Node, ctx: BindContext) -> Gemm:
    """The GEMM a tunable node's default algorithm launches (as its binder binds it); where
    the default has none (fused Winograd by rule), the GEMM of its op's algorithm that has
    (algorithms.gemm_algorithm: conv2d's direct kernel)."""
    layer = as_layer(node)
    algorithm = gemm_algorithm(layer, ctx)
    assert algorithm.gemm is not None
    return algorithm.gemm(layer, ctx, {})


def tunable(node: Node) -> bool:
    # A gathered convolution (cnnc/ir/gathered.py) is tuned as its layer (tuning_graph): its
    # inputs are not the layer's, whose edge shapes the gate checks. So is a convolution reading
    # a concatenation's parts (cnnc/ir/conv_concat.py), and a dense layer with the head reading
    # it (cnnc/ir/dense_pair.py) as its two layers.
    return (node.op not in LAYER_OF_GATHERED and node.op not in ("conv2d_concat", DENSE_PAIR)
            and as_layer(node).op in TUNABLE_OPS)


def tuning_graph(graph: Graph) -> Graph:
    """The graph as the tuner times and keys it: each gathered convolution as the 1x1 layer it
    runs (bind_gathered.py: the layer's direct GEMM, whose register block and row groups its
    variant sets) reading an input of the gathered shape, under its own name, so it shares the
    layer's tuning cache entries (its reads from several tensors are not timed: the GEMM is).
    Each convolution fused with its max or average pooling (conv2d_maxpool, conv2d_avgpool) as that convolution under the
    node's name and the pooling after it (`<name>/pool`, read by the node's readers): its
    variants are the convolution's (bind_conv_maxpool.py pools as the chosen one stores, or
    unfuses it), so it shares the convolution's entries too. Each convolution reading a
    concatenation in place (conv2d_concat) likewise as its upsamplings and concatenation and
    the convolution under the node's name: bind_conv_concat.py reads the parts in place where
    the chosen variant can, else copies them first. Each global average pooling and dense
    layer fused (avgpool_dense) as the pooling (`<name>/pool`) and the dense layer under the
    node's name: its variant is the dense layer's (bind_avgpool_dense.py). Each dense layer and
    softmax head fused (dense_pair) as the two dense layers under their own names: their
    variants are what bind_dense_pair.py binds where it unfuses the pair."""
    if not any(n.op in LAYER_OF_GATHERED or n.op in POOL_OF or n.op == "conv2d_concat"
               or n.op in (AVGPOOL_DENSE, DENSE_PAIR)
               for n in graph.nodes):
        return graph
    nodes = []
    renamed: dict[str, str] = {}
    for n in graph.nodes:
        shapes = tuple(graph.shape_of(x) for x in n.inputs)
        if any(x in renamed for x in n.inputs):
            n = replace(n, inputs=tuple(renamed.get(x, x) for x in n.inputs))
        if n.op == "conv2d_concat":
            *copies, conv = conv_concat_parts(n, shapes)
            nodes.extend(copies)
            nodes.append(replace(conv, name=n.name))
            continue
        if n.op == AVGPOOL_DENSE:
            pool, dense = avgpool_dense_parts(n, shapes[0])
            nodes.extend((pool, dense))
            continue
        if n.op == DENSE_PAIR:
            nodes.extend(dense_pair_parts(n, shapes[0]))
            continue
        if n.op in POOL_OF:
            conv, pool = conv_maxpool_parts(n, shapes)
            nodes.append(replace(conv, name=n.name))
            nodes.append(replace(pool, name=f"{n.name}/pool", inputs=(n.name,)))
            renamed[n.name] = f"{n.name}/pool"
            continue
        if n.op not in LAYER_OF_GATHERED:
            nodes.append(n)
            continue
        shape = gathered_shape(n.attrs, shapes)
        x = f"{n.name}/gathered"
        nodes.append(Node(x, "input", attrs=Attrs(shape=shape[1:], dtype="float32"),
                          shape=shape))
        nodes.append(replace(n, op=LAYER_OF_GATHERED[n.op], inputs=(x,),
                             attrs=Attrs({k: v for k, v in n.attrs.items() if k != "segments"})))
    return graph.with_nodes(nodes, outputs=tuple(renamed.get(o, o) for o in graph.outputs))


def default_variant(node: Node, ctx: BindContext) -> Variant:
    """What the binders choose for `node` without a variant, spelled out."""
    algorithm = default_algorithm(as_layer(node), ctx)
    if algorithm.own_default is not None:
        return dict(algorithm.own_default(as_layer(node), ctx))
    return _gemm_default(node, ctx)


def _gemm_default(node: Node, ctx: BindContext) -> Variant:
    """The default variant of the node's GEMM algorithm (gemm_of's): its default block and
    parts."""
    gemm = gemm_of(node, ctx)
    algorithm = gemm_algorithm(as_layer(node), ctx)
    variant: Variant = {"algo": algorithm.name, **algorithm.default_tile(gemm, ctx.target)}
    if gemm.split:
        variant["split"] = _default_split(gemm, variant, ctx.target)
    return variant


def _default_split(gemm: Gemm, tile: Mapping[str, int], target: Target) -> int:
    blocks = block_grid(gemm.rows, gemm.cols, tile)
    return split_reduction(blocks[0] * blocks[1], gemm.reduction, gemm.step_bytes, target)


def _tiles(cols: int, target: Target) -> list[dict[str, int]]:
    """Register blocks whose columns divide `cols`, within the device's vector registers."""
    tiles = []
    if target.kind == "cpu":
        # Vectors up to two registers wide (float16 on AVX2 was measured competitive);
        # 2 to 8 rows; blocks within the vector registers.
        # Three vectors only where two do not divide the columns (24, 72 filters: 4 x 24).
        widths = [v for v in VECTOR_WIDTHS if v <= 2 * target.max_vector]
        for vw in widths:
            for nv in (1, 2) if cols % (2 * vw) == 0 else (1, 3):
                for mr in (8, 4, 2):
                    tile = {"MR": mr, "VW": vw, "NV": nv}
                    if cols % (vw * nv) or registers_used(tile, target) > target.vector_registers:
                        continue
                    if mr * nv < 4:  # too few accumulators to hide the FMA latency
                        continue
                    tiles.append(tile)
        # Vectors of at least half a register; the fullest blocks first (they hide the FMA
        # latency best), so a search cut short by its budget has tried the likeliest. Among
        # equally full blocks, the wider vectors first: efficientnet_mini's 16 -> 96 1x1
        # expansion (SiLU) took 0.8-0.9x the default 4x8x2's time as 4x16x1 and 1.5-2.3x as
        # 4x4x2, mobilenetv3_mini's 16 -> 48 alike (pocl, Zen 3, load 3-4), but 4x4x2 came
        # first and PATIENCE ended the search before 4x16x1 was timed.
        widest = max((t["VW"] for t in tiles), default=1)
        tiles = [t for t in tiles if 2 * t["VW"] >= min(target.max_vector, widest)]
        tiles.sort(key=lambda t: (-registers_used(t, target), -t["VW"]))
    else:
        for vw in (4, 2, 1):
            for nv in (1, 2):
                for mr in (2, 4, 8):
                    if cols % (vw * nv) == 0:
                        tiles.append({"MR": mr, "VW": vw, "NV": nv})
        widest = max((t["VW"] for t in tiles), default=1)
        tiles = [t for t in tiles if t["VW"] * 2 >= widest]
    return tiles


def error_factor(node: Node, variant: Mapping[str, Any]) -> float:
    """How much larger than a direct sum's the variant's rounding error may be (the gate's
    tolerance is multiplied by it), as its algorithm states: 1 for the default's."""
    key = (as_layer(node).op, variant.get("algo"))
    algorithm = ALGORITHMS[key] if key in ALGORITHMS else _named(variant)
    return 1.0 if algorithm is None else float(algorithm.error_factor(variant))


def family(variant: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the variant computes how, tiles aside, the same for every op: its algorithm and
    what that says sets its variants apart (Algorithm.family)."""
    algorithm = _named(variant)
    return (variant.get("algo"), *(() if algorithm is None else algorithm.family(variant)))


# ---------------------------------------------------------------- the space


def variant_space(node: Node, ctx: BindContext) -> list[Variant]:
    """Every variant the tuner may choose for `node`, the default first (no duplicates)."""
    layer = as_layer(node)
    target = ctx.target
    default = default_variant(node, ctx)
    # The GEMM algorithm's default, whose blocks, parts and forms follow: the default's own
    # but where that has no GEMM (fused Winograd by rule), then second, the direct kernel
    # the rule displaced timed before the other variants.
    chosen = gemm_algorithm(layer, ctx)
    base = default if default_algorithm(layer, ctx) is chosen else _gemm_default(node, ctx)
    gemm = gemm_of(node, ctx)
    out: list[Variant] = [default] if base == default else [default, base]

    def add(variant: Variant) -> None:
        if variant not in out:
            out.append(variant)

    def with_split(variant: Variant, g: Gemm, tile: Mapping[str, int]) -> Variant:
        if g.split:
            variant["split"] = _default_split(g, tile, target)
        return variant

    algorithms = algorithms_of(layer.op)
    # The algorithms that list their own variants first: they change the arithmetic, tiles
    # only how fast it runs, so a search that its budget cuts short has tried the likeliest
    # gains first (each lists its own in the order worth timing).
    for algorithm in algorithms:
        for variant in algorithm.variants(layer, ctx):
            add(dict(variant))
    # The other algorithms with a GEMM that apply, with their own default block (a strided
    # input gradient's direct kernel, all taps, beside the default's phases).
    others = [a for a in algorithms if a.gemm is not None and a.applies(layer, ctx)]
    for algorithm in others:
        if algorithm is not chosen:
            if algorithm.own_default is not None:
                add(dict(algorithm.own_default(layer, ctx)))
                continue
            own = algorithm.default_tile(algorithm.gemm(layer, ctx, {}), target)
            # the default's keys of its own (grad taps' TVB) are not this one's
            add({**{k: v for k, v in base.items() if k not in chosen.keys},
                 "algo": algorithm.name, **own})
    # Reduction parts (a kernel gradient's): twice and four times the default's, before the
    # tiles. The default (split_reduction's cache rule) is a guess: on resnet_mini's strided
    # kernel gradients (pocl, Zen 3, a loaded machine) 2-4x its parts ran 1.2-2x faster, while
    # the tiles after it changed such kernels by less; a search that PATIENCE cuts short after
    # two tiles never reached the parts at the end of the space.
    if gemm.split:
        for split in (base["split"] * 2, base["split"] * 4):
            if split <= min(GRID_GROUPS[2], gemm.reduction):
                add({**base, "split": split})
    # Other forms of a GEMM (few channels: the implicit GEMM instead of copying the windows
    # out; a strided one's windows copied out, a kernel gradient's parts synchronised or not),
    # with the default block and the largest one: after the parts, which a search that
    # PATIENCE cuts short reaches first.
    for algorithm in others:
        for form in algorithm.forms(layer, ctx):
            g = algorithm.gemm(layer, ctx, form)
            for tile in [algorithm.default_tile(g, target), *_tiles(g.cols, target)[:1]]:
                add(with_split({"algo": algorithm.name, **tile, **form}, g, tile))
    # (an algorithm with a default of its own lists its own blocks: grad taps')
    for tile in _tiles(gemm.cols, target) if chosen.own_default is None else []:
        add(with_split({"algo": base["algo"], **tile}, gemm, tile))
    # Work-group shape: the driver's instead of row groups (CPU), for the default block.
    if target.kind == "cpu":
        add({**base, "row_groups": 0})
    # Local tiles off, where the default uses them (GPU).
    if gemm.local and target.local_tiling:
        add({**base, "local": 0})
    # Fewer reduction parts: half the default's, and none.
    if gemm.split:
        parts = base["split"]
        for split in (parts // 2, 1):
            if 1 <= split <= min(GRID_GROUPS[2], gemm.reduction):
                add({**base, "split": split})
    # A gated convolution (cnnc/ir/gated.py) scales its input as some algorithms' kernels load
    # it; its binder (bind_gated.py) sets the others aside, so only those are worth timing.
    if node.op in LAYER_OF_GATED:
        from cnnc.backends.opencl.bind_gated import GATE_ALGORITHMS

        out = [v for v in out if v.get("algo") in GATE_ALGORITHMS]
    return out


def describe(variant: Mapping[str, Any]) -> str:
    """A variant in a few words, as its algorithm writes it ('4x8x2 split=3 no-row-groups',
    'phases 4x8x2', 'winograd m=4 fused x4')."""
    algorithm = _named(variant)
    if algorithm is not None:
        return algorithm.describe(variant)
    name = variant.get("algo")
    return tile_text(variant) if name is None else f"{name} {tile_text(variant)}"
