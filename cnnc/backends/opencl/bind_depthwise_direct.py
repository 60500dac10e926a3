"""The depthwise convolution's forward algorithms (registered in algorithms.py): the direct
kernel (kernels/depthwise.cl), each work-item an MR-pixel by VW * NV-channel block, and the
grouped conv2d the layer also is (conv2d's implicit GEMM, one group per input channel)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cnnc.backends.opencl.bind_layers import bind_conv2d_direct, conv2d_gemm
from cnnc.backends.opencl.launches import NULL, BindContext, Int, NodeBinding, Value, launch
from cnnc.backends.opencl.primitives import conv_geometry, epilogue_act, unfused_softmax
from cnnc.backends.opencl.tiling import gemm_grid, register_tile, tuned_tile
from cnnc.backends.opencl.tunable import Gemm, Variant, tile_text
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Node
from cnnc.ir.layers import depthwise_as_conv2d

_GEOMETRY = ("H", "W", "C", "KH", "KW", "SH", "SW", "DH", "DW", "OH", "OW", "PT", "PL")


def geometry_of(attrs: Attrs, shape: tuple[int, ...]) -> dict[str, int]:
    """depthwise.cl's -D geometry of a depthwise convolution with `attrs` on an input `shape`."""
    geo = conv_geometry(depthwise_as_conv2d(attrs, shape[-1]), shape)
    return {**{k: geo[k] for k in _GEOMETRY}, "M": attrs["depth_multiplier"]}


def _geometry(node: Node, ctx: BindContext) -> dict[str, int]:
    return geometry_of(node.attrs, ctx.shape(node.inputs[0]))


def depthwise_gemm(node: Node, ctx: BindContext, variant: Variant) -> Gemm:
    """The direct kernel's launch seen as a GEMM for the tuner's register blocks: rows the
    output pixels, columns the output channels (each a reduction over the KH * KW taps of its
    own input channel; no local tiles)."""
    geo = _geometry(node, ctx)
    rows = ctx.batch * geo["OH"] * geo["OW"]
    return Gemm(geo["C"] * geo["M"], rows, geo["KH"] * geo["KW"], split=False, local=False)


def bind_depthwise_direct(node: Node, ctx: BindContext) -> NodeBinding:
    """depthwise_conv2d (and a fused one's folded layer) as depthwise.cl's direct kernel."""
    x = node.inputs[0]
    geo = _geometry(node, ctx)
    variant = ctx.variant(node)
    gemm = depthwise_gemm(node, ctx, variant)
    tile = tuned_tile(gemm.cols, ctx.target, variant)
    bias = Value(node.params[1]) if node.attrs["use_bias"] else NULL
    out, after, work = unfused_softmax(node, ctx, workspace=0)
    grid, group = gemm_grid(gemm.rows, gemm.cols, tile, False, ctx.target, variant)
    defines = {**geo, **tile, "HAS_BIAS": int(bias != NULL), **epilogue_act(node)}
    args = (Value(x), Value(node.params[0]), bias, out, Int(ctx.batch))
    dw = launch("depthwise.cl", "depthwise_forward", grid, args, defines, group)
    return NodeBinding((dw, *after), workspaces=work)


def _as_conv2d(node: Node, ctx: BindContext) -> Node:
    attrs = depthwise_as_conv2d(node.attrs, ctx.shape(node.inputs[0])[-1])
    return replace(node, op="conv2d", attrs=attrs)


def bind_depthwise_grouped(node: Node, ctx: BindContext) -> NodeBinding:
    """depthwise_conv2d as the grouped conv2d it is (conv2d.cl's implicit GEMM, or im2col with
    few channels): its (KH, KW, C, M) kernel is that conv2d's (KH, KW, 1, C*M), byte for byte."""
    return bind_conv2d_direct(_as_conv2d(node, ctx), ctx)


def grouped_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    """The grouped path with its conv2d's default block (its GEMM has M columns per group)."""
    gemm = conv2d_gemm(_as_conv2d(node, ctx), ctx, {})
    return [{"algo": GROUPED, **register_tile(gemm.cols, ctx.target)}]


def describe_direct(variant: Variant) -> str:
    return f"depthwise {tile_text(variant)}"


def describe_grouped(variant: Variant) -> str:
    return f"grouped conv2d {tile_text(variant)}"


DIRECT, GROUPED = "depthwise", "grouped"
