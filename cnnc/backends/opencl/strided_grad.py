"""The input gradient of a strided convolution by phases (kernels/conv2d.cl:
conv2d_grad_input_phases): its binding, conv2d_grad_input's "phases" algorithm (algorithms.py).

With strides S, the direct input gradient (conv2d_grad_input) visits every tap for every dx
pixel, though only about one (pixel, tap) pair in SH*SW meets a dy element; the others read the
zeros buffer and do their FMAs anyway. Grouping the dx pixels by phase ((ih + PT) mod SH,
(iw + PL) mod SW) leaves each group a convolution with the taps of its phase only: the same
sums without their zero terms (a 3x3 stride-2 kernel's gradient does a quarter of the FMAs).
It is the default for strided input gradients ("algo": "phases"; "direct" is the old kernel,
both registered there, both in the tuner's space). Dilation and groups are handled as the
direct kernel does; local tiles (GPUs) when groups == 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import gcd
from typing import Any

from cnnc.backends.opencl.launches import (
    ZEROS,
    BindContext,
    Int,
    NodeBinding,
    Value,
    Workspace,
    launch,
)
from cnnc.backends.opencl.primitives import transpose
from cnnc.backends.opencl.tiling import tuned_row_groups, tuned_tile, with_local_tile
from cnnc.intmath import ceil_div
from cnnc.ir.graph import Node


def phases_apply(geo: Mapping[str, int]) -> bool:
    """Whether phases save work: a stride above 1 (with stride 1 there is one phase, the
    direct kernel's loop)."""
    return geo["SH"] > 1 or geo["SW"] > 1


def tap_steps(geo: Mapping[str, int]) -> dict[str, int]:
    """TSH, TSW: the step between the taps of one phase (S / gcd(S, D) along each axis)."""
    return {
        "TSH": geo["SH"] // gcd(geo["SH"], geo["DH"]),
        "TSW": geo["SW"] // gcd(geo["SW"], geo["DW"]),
    }


def phase_pixels(size: int, pad: int, stride: int) -> list[int]:
    """The dx pixels of each phase along one axis, phases in order (conv2d.cl: phase_pixels)."""
    counts = []
    for p in range(stride):
        first = (p - pad) % stride
        counts.append(ceil_div(size - first, stride) if first < size else 0)
    return counts


def phase_blocks(geo: Mapping[str, int], batch: int, align: int) -> int:
    """Row blocks of `align` rows over every phase, each phase's rows padded to whole blocks:
    the kernel's dim 0 (in blocks, or in local tiles of BM rows)."""
    hs = phase_pixels(geo["H"], geo["PT"], geo["SH"])
    ws = phase_pixels(geo["W"], geo["PL"], geo["SW"])
    return sum(ceil_div(batch * qh * qw, align) for qh in hs for qw in ws)


def bind_conv2d_grad_input_phases(
    node: Node, ctx: BindContext, geo: Mapping[str, int], variant: Mapping[str, Any]
) -> NodeBinding:
    dy, kernel = node.inputs
    tile, local = with_local_tile(
        tuned_tile(geo["CG"], ctx.target, variant),
        ctx.target,
        # The local-tile path gets a stride of 1 on one axis only wrong (strides (2, 1): every
        # dx value off); until conv2d.cl's tiled phases are mended, those rows take the
        # register-tile path, which is right for every stride.
        node.attrs["groups"] == 1 and bool(variant.get("local", 1))
        and min(geo["SH"], geo["SW"]) > 1,
    )
    nr = tile["VW"] * tile["NV"]
    if local:
        rows_per_block = tile["TY"] * tile["MR"]
        group = tile["TX"] * tile["TY"]
        tiles = phase_blocks(geo, ctx.batch, rows_per_block)
        grid = (tiles * group, ceil_div(geo["C"], tile["TX"] * nr))
        local_size: tuple[int, ...] | None = (group, 1)
    else:
        grid = (phase_blocks(geo, ctx.batch, tile["MR"]), ceil_div(geo["C"], nr))
        local_size = tuned_row_groups(grid, ctx.target, variant)
    taps = geo["KH"] * geo["KW"]
    kernel_t = Workspace(0)
    args = (Value(dy), kernel_t, ZEROS, Value(node.name), Int(ctx.batch))
    defines = {**geo, **tile, **tap_steps(geo)}
    # A parameter's transpose (a transposed convolution's forward) depends on the weights only.
    once = kernel in ctx.graph.state_map
    launches = (
        transpose(Value(kernel), kernel_t, taps, geo["CG"], geo["F"], once=once),
        launch("conv2d.cl", "conv2d_grad_input_phases", grid, args, defines, local_size),
    )
    return NodeBinding(launches, workspaces=(taps * geo["CG"] * geo["F"],), zeros=geo["FG"],
                       constants=(0,) if once else ())
