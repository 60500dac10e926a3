"""The OpenCL backend's algorithms: each tunable op's implementations, registered once under
(op, algorithm) with their binding, GEMM geometry, variants, error growth and edge shapes, and
the binders of those ops, which run the one a node's variant names (else the op's default).

The tuner (cnnc/tune/) iterates over `ALGORITHMS` and knows no op or algorithm by name: adding an
algorithm for an op, or a new tunable op, is one `Algorithm` in `REGISTERED` (beside the binding
it names). Where several of an op's algorithms have a GEMM and apply, the first registered is the
default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cnnc.backends.opencl import bind_conv_rows as conv_rows
from cnnc.backends.opencl import bind_depthwise as dw_grad
from cnnc.backends.opencl import bind_depthwise_direct as depthwise
from cnnc.backends.opencl import bind_depthwise_pointwise as dwpw
from cnnc.backends.opencl import bind_gemv as gemv
from cnnc.backends.opencl import bind_grad_rows as grad_rows
from cnnc.backends.opencl import bind_grad_taps as grad_taps
from cnnc.backends.opencl import bind_pointwise_avgpool as pooled
from cnnc.backends.opencl import edge_shapes, winograd
from cnnc.backends.opencl.bind_conv_transpose import on_conv, transpose_edges
from cnnc.backends.opencl.bind_conv_transpose import phases_apply as transposed_phases_apply
from cnnc.backends.opencl.bind_gradients import (
    SYNC_FORM_STEPS,
    bind_conv2d_grad_input_by_phases,
    bind_conv2d_grad_input_direct,
    bind_conv2d_grad_kernel_direct,
    bind_dense_grad_input_direct,
    bind_dense_grad_kernel_direct,
    conv2d_grad_input_gemm,
    conv2d_grad_kernel_gemm,
    dense_grad_input_gemm,
    dense_grad_kernel_gemm,
    skips_pixels,
    strided,
)
from cnnc.backends.opencl.bind_layers import (
    bind_conv2d_direct,
    bind_dense_direct,
    conv2d_gemm,
    default_split,
    dense_gemm,
    offered_split,
)
from cnnc.backends.opencl.launches import BindContext, Binder, NodeBinding
from cnnc.backends.opencl.primitives import conv_geometry, uses_im2col
from cnnc.backends.opencl.tiling import (
    accumulator_registers,
    exact_row_tile,
    operand_registers,
    padded_tiles,
    pixel_row_tile,
)
from cnnc.backends.opencl.tunable import Algorithm, EdgeShape, Gemm, Variant, tile_text
from cnnc.errors import InternalError
from cnnc.ir.graph import Graph, Node


def _im2col_off(node: Node, ctx: BindContext) -> list[dict[str, int]]:
    """The implicit GEMM where the windows are copied out by default (few channels; a 1x1
    strided forward pass on a CPU: primitives.strided_copies)."""
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    return [{"im2col": 0}] if uses_im2col(node, geo, None, ctx.target) else []


def _im2col_forms(node: Node, ctx: BindContext) -> list[dict[str, int]]:
    """_im2col_off's form, and where a stride skips input pixels, the windows copied out
    ("im2col": 1): a 1x1 stride-2 convolution then multiplies a compact copy of the pixels it
    reads (resnet_mini's shortcut: 1.4x the implicit GEMM forward, 1.3x its kernel gradient;
    pocl, Zen 3, load 4, benchmarks/strided.py), where the implicit GEMM's every step reads
    another cache line."""
    off = _im2col_off(node, ctx)
    if off:
        return off
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    return [{"im2col": 1}] if node.attrs["groups"] == 1 and skips_pixels(geo) else []


def _reads_concatenation(node: Node, ctx: BindContext) -> bool:
    """Whether the convolution reads a concatenation: conv2d_concat's in tuning_graph (its
    `<node>/cat`), whose one-launch binding reads the parts in place in one reduction part only
    (bind_conv_concat.py: parts would read the copies it exists to avoid)."""
    producer = ctx.graph.node_map.get(node.inputs[0])
    return producer is not None and producer.op == "concatenate"


def _forward_forms(node: Node, ctx: BindContext) -> list[dict[str, int]]:
    """_im2col_forms, and where the output has few pixels (batch 1), the implicit GEMM's
    reduction in parts of every tap's channels added up after with the epilogue
    (bind_layers.forward_split): in one part where the default splits it (a CPU's smallest
    maps), else in parts (without local tiles, which a part's launch does not use)."""
    forms = _im2col_forms(node, ctx)
    if forms or _reads_concatenation(node, ctx):
        return forms
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    if default_split(geo, ctx.batch, ctx.target) > 1:
        return [{"split": 1}]
    parts = offered_split(geo, ctx.batch)
    if parts == 1:
        return []
    no_local = {"local": 0} if ctx.target.local_tiling and node.attrs["groups"] == 1 else {}
    return [{"split": parts, **no_local}]


def _grad_kernel_forms(node: Node, ctx: BindContext) -> list[dict[str, int]]:
    """The windows copied out where a stride skips pixels, and on a CPU the implicit GEMM with
    and without one reduction part's blocks in one work-group taking its pixels SYNC_FORM_STEPS
    at a time together (conv2d.cl's SYNC_STEPS; the default for a strided one:
    bind_gradients.sync_steps). On resnet_mini's kernel gradients at batch 128 (pocl, Zen 3,
    load 3.9, benchmarks/strided.py --sync) that ran the 3x3 stride-2 one 1.4x, the 1x1
    stride-2 one 1.9x and a 3x3 one of 32 channels into 64 1.6x as fast as each block streaming
    its whole part alone, the 3x3 ones of 16 channels at 28x28 0.8-0.95x (those run Winograd):
    the tuner's to measure."""
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    if uses_im2col(node, geo):
        return [{"im2col": 0}]
    # the copy as a form only (a kernel gradient never copies by default with these channels)
    forms = [{"im2col": 1}] if node.attrs["groups"] == 1 and skips_pixels(geo) else []
    if ctx.target.kind == "cpu":
        forms.append({"sync": 0 if skips_pixels(geo) else SYNC_FORM_STEPS})
    return forms


def _padded(node: Node, ctx: BindContext) -> list[dict[str, int]]:
    """The implicit GEMM with its kernel's columns padded to blocks of the widest vectors
    (tiling.padded_tiles, conv2d.cl -D FP), where they do not divide the filters: an ungrouped
    convolution's forward pass on the register-blocked path, in one reduction part by
    default."""
    geo = conv_geometry(node.attrs, ctx.shape(node.inputs[0]))
    if (node.attrs["groups"] != 1 or uses_im2col(node, geo, None, ctx.target)
            or default_split(geo, ctx.batch, ctx.target) > 1):
        return []
    return [{"algo": "direct", **tile, "pad": 1} for tile in padded_tiles(geo["F"], ctx.target)]


def _direct_family(variant: Variant) -> tuple[int]:
    """Whether the windows are copied out (im2col) where they would be: the same family for
    every op's direct algorithm; copied out where they would not be (a strided convolution's
    "im2col": 1) is a family of its own, so that it losing sets aside only itself."""
    if "im2col" not in variant:
        return (1,)
    return (2,) if variant["im2col"] == 1 else (0,)


def _phases_text(variant: Variant) -> str:
    return f"phases {tile_text(variant)}"


# 0: the implicit GEMM where few channels would copy windows; 1: copy a strided one's out
_IM2COL_KEYS = {"im2col": (0, 1)}


def _direct(op: str, bind: Binder, edges: Callable[[Node, Graph], list[EdgeShape]],
            gemm: Callable[[Node, BindContext, Variant], Gemm], **more: Any) -> Algorithm:
    """The op's direct algorithm: its GEMM, register-blocked as the tuner chooses."""
    return Algorithm(op, "direct", bind, edges, tile_text, gemm=gemm, family=_direct_family,
                     **more)


def _winograd(op: str, bind: Binder, edges: Callable[[Node, Graph], list[EdgeShape]],
              **more: Any) -> Algorithm:
    """Winograd F(m x m, 3 x 3) for a stride-1 3x3 convolution the op is (winograd.py)."""
    return Algorithm(op, winograd.NAME, bind, edges, winograd.describe, applies=winograd.applies,
                     variants=winograd.winograd_space, keys=winograd.VARIANT_KEYS,
                     tile_keys=winograd.TILE_KEYS, error_factor=winograd.variant_error_factor,
                     family=winograd.variant_family, **more)


REGISTERED: tuple[Algorithm, ...] = (
    # Few input channels (a stem): the direct row kernel first, the default where it applies
    # (bind_conv_rows.py); the implicit GEMM and im2col + GEMM are the direct algorithm's.
    Algorithm("conv2d", conv_rows.NAME, conv_rows.bind_conv2d_rows, edge_shapes.conv2d_edges,
              conv_rows.describe, gemm=conv_rows.rows_gemm, applies=conv_rows.applies,
              variants=conv_rows.rows_variants, keys=conv_rows.KEYS, tile=conv_rows.rows_tile,
              registers=accumulator_registers),
    # The implicit GEMM: the default but where fused Winograd wins by rule (below).
    _direct("conv2d", bind_conv2d_direct, edge_shapes.conv2d_edges, conv2d_gemm,
            variants=_padded, forms=_forward_forms, keys={**_IM2COL_KEYS, "pad": (0, 1)},
            rows_tile=exact_row_tile, registers=operand_registers,
            default_where=lambda node, ctx: not winograd.wins_by_rule(node, ctx)),
    # Winograd: the default where its one-launch F(2x2) kernel wins by rule (an AVX-512 CPU,
    # batch 16 or less, a 14x14 map or larger, few channels: winograd.wins_by_rule).
    _winograd("conv2d", winograd.bind_conv2d_winograd, edge_shapes.conv2d_edges,
              default_where=winograd.wins_by_rule, own_default=winograd.own_default),
    # Phases first: the default where they apply (a strided convolution's input gradient).
    Algorithm("conv2d_grad_input", "phases", bind_conv2d_grad_input_by_phases,
              edge_shapes.conv2d_grad_input_edges, _phases_text, gemm=conv2d_grad_input_gemm,
              applies=strided),
    _direct("conv2d_grad_input", bind_conv2d_grad_input_direct,
            edge_shapes.conv2d_grad_input_edges, conv2d_grad_input_gemm),
    _winograd("conv2d_grad_input", winograd.bind_conv2d_grad_input_winograd,
              edge_shapes.conv2d_grad_input_edges),
    # Few input channels (a stem) on a CPU: the direct row kernel first, the default there
    # (bind_grad_rows.py); elsewhere one of the tuner's variants.
    Algorithm("conv2d_grad_kernel", grad_rows.NAME, grad_rows.bind_conv2d_grad_kernel_rows,
              edge_shapes.conv2d_grad_kernel_edges, grad_rows.describe,
              gemm=grad_rows.grad_rows_gemm, applies=grad_rows.applies,
              default_where=grad_rows.default_where, tile=grad_rows.grad_rows_tile,
              variants=grad_rows.grad_rows_variants, keys=grad_rows.KEYS),
    # The implicit GEMM: the default but where the tap vectors win by rule (below).
    _direct("conv2d_grad_kernel", bind_conv2d_grad_kernel_direct,
            edge_shapes.conv2d_grad_kernel_edges, conv2d_grad_kernel_gemm,
            forms=_grad_kernel_forms, keys={**_IM2COL_KEYS, "sync": (0, 4096)},
            default_where=lambda node, ctx: not grad_taps.wins_by_rule(node, ctx)),
    # Winograd F(3x3, m x m) for a stride-1 3x3 convolution's kernel gradient (winograd.py).
    Algorithm("conv2d_grad_kernel", winograd.NAME, winograd.bind_conv2d_grad_kernel_winograd,
              edge_shapes.conv2d_grad_kernel_edges, winograd.describe,
              applies=winograd.grad_kernel_applies, variants=winograd.grad_kernel_variants,
              keys=winograd.VARIANT_KEYS, tile_keys=winograd.TILE_KEYS,
              error_factor=winograd.grad_kernel_error_factor, family=winograd.variant_family),
    # More channels, on a CPU: the taps as vectors read straight from x (bind_grad_taps.py);
    # the default where it wins by rule (few filters, a window along contiguous columns:
    # grad_taps.wins_by_rule), elsewhere variants. After Winograd, whose variants (3-4x the
    # default) a search should time first: the seed model's 128- and 256-channel kernel
    # gradients at batch 32 timed the default and two taps variants, gained nothing, and
    # PATIENCE ended the search before Winograd (18 ms kept where Winograd ran 6-11 ms).
    Algorithm("conv2d_grad_kernel", grad_taps.NAME, grad_taps.bind_conv2d_grad_kernel_taps,
              edge_shapes.conv2d_grad_kernel_edges, grad_taps.describe,
              gemm=grad_rows.grad_rows_gemm, applies=grad_taps.offered,
              default_where=grad_taps.wins_by_rule, own_default=grad_taps.own_default,
              variants=grad_taps.grad_taps_variants,
              keys=grad_taps.KEYS),
    # Transposed convolutions: the conv2d op each is, with its explicit window
    # (bind_conv_transpose.py); phases first where strided, as for conv2d_grad_input.
    Algorithm("conv2d_transpose", "phases", on_conv(bind_conv2d_grad_input_by_phases),
              transpose_edges, _phases_text, gemm=on_conv(conv2d_grad_input_gemm),
              applies=lambda node, ctx: transposed_phases_apply(node, ctx, strided)),
    _direct("conv2d_transpose", on_conv(bind_conv2d_grad_input_direct), transpose_edges,
            on_conv(conv2d_grad_input_gemm)),
    _direct("conv2d_transpose_grad_input", on_conv(bind_conv2d_direct), transpose_edges,
            on_conv(conv2d_gemm), forms=on_conv(_im2col_off), keys=_IM2COL_KEYS),
    _direct("conv2d_transpose_grad_kernel", on_conv(bind_conv2d_grad_kernel_direct),
            transpose_edges, on_conv(conv2d_grad_kernel_gemm), forms=on_conv(_im2col_off),
            keys=_IM2COL_KEYS),
    # Depthwise convolutions: the row kernel first (the default), the direct kernel over flat
    # pixels and the grouped conv2d they also are as the others (bind_depthwise_direct.py);
    # their gradients: the direct kernels of depthwise_grad.cl, else the grouped conv2d
    # gradients (bind_depthwise.py).
    Algorithm("depthwise_conv2d", depthwise.ROWS, depthwise.bind_depthwise_rows,
              edge_shapes.depthwise_edges, depthwise.describe_rows,
              gemm=depthwise.depthwise_rows_gemm, variants=depthwise.rows_variants,
              keys=depthwise.ROWS_KEYS, tile=pixel_row_tile, registers=accumulator_registers),
    Algorithm("depthwise_conv2d", depthwise.DIRECT, depthwise.bind_depthwise_direct,
              edge_shapes.depthwise_edges, depthwise.describe_direct,
              gemm=depthwise.depthwise_gemm),
    Algorithm("depthwise_conv2d", depthwise.GROUPED, depthwise.bind_depthwise_grouped,
              edge_shapes.depthwise_edges, depthwise.describe_grouped,
              variants=depthwise.grouped_variants, family=_direct_family),
    Algorithm("depthwise_conv2d_grad_input", depthwise.DIRECT, dw_grad.bind_grad_input_direct,
              dw_grad.grad_input_edges, depthwise.describe_direct, gemm=dw_grad.grad_input_gemm),
    Algorithm("depthwise_conv2d_grad_input", depthwise.GROUPED, dw_grad.bind_grad_input_grouped,
              dw_grad.grad_input_edges, depthwise.describe_grouped,
              variants=dw_grad.grad_input_grouped_variants, family=_direct_family),
    Algorithm("depthwise_conv2d_grad_kernel", depthwise.DIRECT, dw_grad.bind_grad_kernel_direct,
              dw_grad.grad_kernel_edges, depthwise.describe_direct,
              gemm=dw_grad.grad_kernel_gemm),
    Algorithm("depthwise_conv2d_grad_kernel", depthwise.GROUPED,
              dw_grad.bind_grad_kernel_grouped, dw_grad.grad_kernel_edges,
              depthwise.describe_grouped, variants=dw_grad.grad_kernel_grouped_variants,
              family=_direct_family),
    # A depthwise convolution and the 1x1 one reading it, fused at inference: one kernel, its
    # register block the tuner's (bind_depthwise_pointwise.py). On CPUs first (the default)
    # in two phases per work-item, the depthwise slice of a block of pixels of one output row
    # into a private array (input columns shared by the row's windows), then a GEMM's register
    # blocks over it; the same over flat pixel blocks; elsewhere in one.
    Algorithm("depthwise_pointwise", dwpw.ROWS, dwpw.bind_rows, dwpw.dwpw_edges,
              dwpw.describe_rows, gemm=dwpw.staged_gemm, applies=dwpw.staged_applies,
              variants=dwpw.rows_variants, keys={**depthwise.ROWS_KEYS, "pad": (0, 1)},
              tile=dwpw.rows_default,
              registers=dwpw.rows_registers),
    Algorithm("depthwise_pointwise", dwpw.STAGED, dwpw.bind_staged, dwpw.dwpw_edges,
              dwpw.describe_staged, gemm=dwpw.staged_gemm, applies=dwpw.staged_applies,
              variants=dwpw.staged_variants, tile=dwpw.staged_default),
    Algorithm("depthwise_pointwise", dwpw.NAME, dwpw.bind_depthwise_pointwise, dwpw.dwpw_edges,
              dwpw.describe, gemm=dwpw.dwpw_gemm, variants=dwpw.dwpw_variants,
              tile=dwpw.default_tile, registers=accumulator_registers),
    # A 1x1 convolution and the global average pooling reading it, fused at inference: one
    # kernel, the map never written (bind_pointwise_avgpool.py).
    Algorithm("pointwise_avgpool", pooled.NAME, pooled.bind_pointwise_avgpool,
              pooled.pooled_edges, pooled.describe, gemm=pooled.pooled_gemm,
              variants=pooled.pooled_variants, keys=pooled.KEYS),
    # A classifier's head on a few rows: the dense layer and its softmax in one launch, a
    # work-group per row block (bind_gemv.py); the default wherever it applies.
    Algorithm("dense", gemv.HEAD, gemv.bind_dense_softmax, edge_shapes.dense_edges,
              gemv.describe_head, gemm=gemv.head_gemm, applies=gemv.head_applies),
    # A dense layer on a few rows (batch 1 to 8): a work-group per output block, the reduction
    # split among its work-items (bind_gemv.py); the tuner's to pick, the default on one row.
    Algorithm("dense", gemv.NAME, gemv.bind_dense_gemv, edge_shapes.dense_edges, gemv.describe,
              gemm=gemv.gemv_gemm, applies=gemv.applies, default_where=gemv.wins_by_rule),
    _direct("dense", bind_dense_direct, edge_shapes.dense_edges, dense_gemm),
    _direct("dense_grad_input", bind_dense_grad_input_direct, edge_shapes.dense_grad_input_edges,
            dense_grad_input_gemm),
    _direct("dense_grad_kernel", bind_dense_grad_kernel_direct,
            edge_shapes.dense_grad_kernel_edges, dense_grad_kernel_gemm),
)

ALGORITHMS: Mapping[tuple[str, str], Algorithm] = {(a.op, a.name): a for a in REGISTERED}
if len(ALGORITHMS) != len(REGISTERED):
    raise InternalError("an (op, algorithm) is registered twice in algorithms.py")

TUNABLE_OPS: tuple[str, ...] = tuple(dict.fromkeys(a.op for a in REGISTERED))
"""The ops with kernel variants, in registration order."""


def algorithms_of(op: str) -> list[Algorithm]:
    """The op's algorithms, in registration order ([] for an op with one way to bind it)."""
    return [a for a in REGISTERED if a.op == op]


def default_algorithm(node: Node, ctx: BindContext) -> Algorithm:
    """What the binders run for `node` without a variant: the first of its op's algorithms with
    a GEMM or a default variant of its own (own_default) that applies where it is the default."""
    for a in algorithms_of(node.op):
        if ((a.gemm is not None or a.own_default is not None) and a.applies(node, ctx)
                and a.default_where(node, ctx)):
            return a
    raise InternalError(f"node '{node.name}': no default algorithm for op '{node.op}'")


def gemm_algorithm(node: Node, ctx: BindContext) -> Algorithm:
    """The default algorithm where it has a GEMM, else the first of the op's that has one and
    applies (conv2d's direct kernel where fused Winograd is the default): the GEMM the tuner's
    space draws its register blocks and reduction parts from, and its FLOP count."""
    default = default_algorithm(node, ctx)
    if default.gemm is not None:
        return default
    for a in algorithms_of(node.op):
        if a.gemm is not None and a.applies(node, ctx):
            return a
    raise InternalError(f"node '{node.name}': no algorithm of op '{node.op}' has a GEMM")


def chosen_algorithm(node: Node, ctx: BindContext) -> Algorithm:
    """The algorithm the node's variant names ("algo"), else the op's default."""
    name = ctx.variant(node).get("algo")
    if name is None:
        return default_algorithm(node, ctx)
    try:
        return ALGORITHMS[(node.op, name)]
    except KeyError:
        known = ", ".join(a.name for a in algorithms_of(node.op))
        raise InternalError(f"node '{node.name}': {node.op} has no algorithm {name!r} (it has "
                            f"{known})") from None


def bind_by_algorithm(node: Node, ctx: BindContext) -> NodeBinding:
    return chosen_algorithm(node, ctx).bind(node, ctx)


BINDERS: dict[str, Binder] = {op: bind_by_algorithm for op in TUNABLE_OPS}
