"""Binder of conv2d_concat (cnnc/ir/conv_concat.py): node -> launches, and its table `BINDERS`.

The node runs its convolution's own binding (algorithms.py or bind_fused.py, with whatever
variant the tuner chose for the convolution) on a node `<name>/conv` reading the concatenated
map `<name>/cat`, and then the launches that read that map read the parts where they lie: each
gets -D CONCAT=1 C0 UP0H UP0W UP1H UP1W and the second part as its next argument. The kernels
that can are `IN_PLACE_READS`' (winograd.cl's input transforms, whose vectors of channels must
lie inside one part; conv2d.cl's implicit GEMM on the register-blocked path). Any other variant
(the row kernel, im2col + matmul, a GPU's local-memory tiles) or a split the input transform's
vectors would straddle is unfused, never computed elsewhere: the upsampling and
concatenation run into workspaces first, the launches of the graph without the fusion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from math import gcd

from cnnc.backends.opencl.algorithms import BINDERS as ALGORITHM_BINDERS
from cnnc.backends.opencl.bind_fused import BINDERS as FUSED_BINDERS
from cnnc.backends.opencl.bind_layers import bind_concatenate
from cnnc.backends.opencl.bind_resample import bind_upsampling2d
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
from cnnc.backends.opencl.tiling import vector_width
from cnnc.ir.conv_concat import CONV_OPS, parts
from cnnc.ir.graph import Node

_CONV_BINDERS: dict[str, Binder] = {
    op: {**ALGORITHM_BINDERS, **FUSED_BINDERS}[op] for op in CONV_OPS}
_PART_BINDERS: dict[str, Binder] = {"upsampling2d": bind_upsampling2d,
                                    "concatenate": bind_concatenate}

# A launch reading the concatenated map, made to read the parts (its -D options `cat`) by the
# kernel's rule; None where that launch cannot.
InPlace = Callable[[Launch, Mapping[str, int], BindContext], "Launch | None"]


def _input(lau: Launch, cat: Mapping[str, int], ctx: BindContext) -> Launch | None:
    """winograd_input: a work-item's VW channels (the packed V's vectors) inside one part."""
    if cat["C0"] % lau.define_map["VW"]:
        return None
    return replace(lau, defines=tuple(sorted({**lau.define_map, **cat}.items())))


def _fused(lau: Launch, cat: Mapping[str, int], ctx: BindContext) -> Launch | None:
    """winograd_fused: its input vectors (VC, private only) narrowed to fit each part."""
    vc = vector_width(gcd(lau.define_map["VC"], cat["C0"]), ctx.target)
    return replace(lau, defines=tuple(sorted({**lau.define_map, **cat, "VC": vc}.items())))


def _direct(lau: Launch, cat: Mapping[str, int], ctx: BindContext) -> Launch | None:
    """conv2d_forward: each tap's reduction over one part, then the other; on the
    register-blocked path of an ungrouped convolution (not a GPU's local-memory tiles), in one
    reduction part (one the tuner chose split reads the copies; by default one part here)."""
    d = lau.define_map
    if (d.get("LOCAL_TILE") or d.get("GATED") or d.get("GATHERED") or d["CG"] != d["C"]
            or d.get("SPLIT", 1) > 1):
        return None
    return replace(lau, defines=tuple(sorted({**d, **cat}.items())))


IN_PLACE_READS: dict[tuple[str, str], InPlace] = {
    ("conv2d.cl", "conv2d_forward"): _direct,
    ("winograd.cl", "winograd_input"): _input,
    ("winograd.cl", "winograd_fused"): _fused,
}
"""The kernels that read a concatenation's parts in place (-D CONCAT=1), each with how its
launch changes."""



def _read_parts(lau: Launch, cat: Value, sources: tuple[str, str]) -> Launch:
    at = lau.args.index(cat)
    args = (*lau.args[:at], Value(sources[0]), Value(sources[1]), *lau.args[at + 1:])
    return replace(lau, args=args)


def concat_defines(node: Node, ctx: BindContext) -> dict[str, int]:
    """The -D options of the in-place reads: part 0's channels and each part's factors."""
    (uh0, uw0), (uh1, uw1) = node.attrs["ups"]
    return {"CONCAT": 1, "C0": ctx.shape(node.inputs[0])[3], "UP0H": uh0, "UP0W": uw0,
            "UP1H": uh1, "UP1W": uw1}


def bind_conv2d_concat(node: Node, ctx: BindContext) -> NodeBinding:
    shapes = tuple(ctx.graph.shape_of(x) for x in node.inputs)
    *copies, conv = parts(node, shapes)
    variant = ctx.variant(node)
    if variant.get("algo", "direct") == "direct":  # in one part unless tuned otherwise
        variant = {"split": 1, **variant}
    inner_ctx = replace(ctx, graph=ctx.graph.with_nodes((*ctx.graph.nodes, *copies, conv)),
                        variants={**ctx.variants, conv.name: variant})
    inner = _CONV_BINDERS[conv.op](conv, inner_ctx)
    cat, out = Value(copies[-1].name), {Value(conv.name): Value(node.name)}
    cat_defines = concat_defines(node, ctx)
    launches = []
    for lau in inner.launches:
        if cat in lau.args:
            rule = IN_PLACE_READS.get((lau.file, lau.kernel))
            read = rule(lau, cat_defines, ctx) if rule else None
            if read is None:
                return _unfused(copies, inner, inner_ctx, out)
            lau = _read_parts(read, cat, node.inputs)
        launches.append(redirect(lau, out))
    return replace(inner, launches=tuple(launches))


def _unfused(copies: list[Node], inner: NodeBinding, inner_ctx: BindContext,
             out: Mapping[Arg, Arg]) -> NodeBinding:
    """The upsamplings and the concatenation into workspaces, the convolution reading them."""
    first = len(inner.workspaces)
    names: dict[Arg, Arg] = {**out, **{Value(n.name): Workspace(first + i)
                                       for i, n in enumerate(copies)}}
    launches = [lau for n in copies for lau in _PART_BINDERS[n.op](n, inner_ctx).launches]
    launches = tuple(redirect(lau, names) for lau in (*launches, *inner.launches))
    return replace(inner, launches=launches,
                   workspaces=(*inner.workspaces, *(inner_ctx.numel(n.name) for n in copies)))


BINDERS: dict[str, Binder] = {"conv2d_concat": bind_conv2d_concat}
