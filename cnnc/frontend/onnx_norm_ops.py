"""ONNX front end: layer normalisation, global max pooling and channel shuffle, by rule and by
pattern.

Rules (registered into onnx_ops.RULES): LayerNormalization over the channels (axis -1 on a
channels-last view, as PyTorch's ConvNeXt writes it between two Transposes, which only change
the view), GlobalMaxPool, and ReduceMax over the spatial axes (PyTorch's dynamo exporter's
AdaptiveMaxPool2d(1)).

Patterns (PATTERNS, tried on a node before its rule): a chain of nodes that computes one cnnc
layer exactly, anchored at its first node, whose later nodes the import then skips
(Context.absorbed):
- ShuffleNet's channel shuffle, Reshape (N, G, C/G, H, W) -> Transpose (0, 2, 1, 3, 4) ->
  Reshape (N, C, H, W): channel_shuffle groups=G;
- the channels-first LayerNorm of ConvNeXt's reference code, ReduceMean over the channels ->
  Sub -> Pow 2 -> ReduceMean -> Add eps -> Sqrt -> Div [-> Mul gamma] [-> Add beta], with
  (C, 1, 1) constants: layer_norm with that epsilon.
Each intermediate value must be read by the next node of the chain only, so the chain computes
nothing else; constants further down the chain (exporters put a Constant node right before its
reader) are folded ahead when the anchor is matched. A chain that differs in any way is left to
the ordinary rules, node by node.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod
from typing import Any

import numpy as np

from cnnc.frontend.onnx_fold import BATCH, FoldError, can_fold, fold
from cnnc.frontend.onnx_graph import OnnxNode
from cnnc.frontend.onnx_lowering import NCHW, Context, Tensor, Unsupported
from cnnc.frontend.onnx_ops import (
    RULES,
    Rule,
    _check_outputs_unused,
    _hint,
    _needs_layout,
    _rows_in_cnnc_order,
    float32_value,
)

# ---------------------------------------------------------------- layer norm


def _affine_vector(value: np.ndarray | None, x: Tensor, what: str) -> np.ndarray | None:
    """A Scale or B constant as one float per channel of x; None when omitted. Accepts shapes
    that broadcast along the channel axis only: (C,) on a channels-last view, (C, 1, 1) or
    (1, C, 1, 1) on NCHW."""
    if value is None:
        return None
    channels = x.shape[-1]
    axis = x.perm.index(x.rank - 1)  # the ONNX axis holding cnnc's channels
    shape = (1,) * (x.rank - value.ndim) + value.shape
    if value.ndim > x.rank or shape[axis] != channels or prod(shape) != channels:
        raise Unsupported(f"{what} has shape {value.shape}; expected one value per channel "
                          f"along ONNX axis {axis} of {x.onnx_shape}")
    if value.dtype.kind != "f" or not np.isfinite(value).all():
        raise Unsupported(f"{what} must hold finite floats")
    return _rows_in_cnnc_order(x, value.reshape(-1).astype(np.float32))


def _emit_layer_norm(cx: Context, node: OnnxNode, out: OnnxNode, x: Tensor,
                     gamma: np.ndarray | None, beta: np.ndarray | None, eps: float) -> None:
    """A layer_norm layer for `node` (the anchor) defining `out`'s output."""
    hint = _hint(node)
    keywords: dict[str, Any] = {"epsilon": float32_value(eps)}
    params = {}
    # cnnc's export writes ones for a layer without gamma and says so in the metadata.
    if gamma is None or (cx.layer_arg(hint, "scale") is False and (gamma == 1).all()):
        keywords["scale"] = False
    else:
        params["gamma"] = gamma
    if beta is None:
        keywords["center"] = False
    else:
        params["beta"] = beta
    layer = cx.layer(node, "layer_norm", [x], keywords, params, hint=hint,
                     value=out.outputs[0])
    cx.define(out, Tensor(layer, x.perm, x.order))


def _channels_last(x: Tensor, axis: int, what: str) -> None:
    if x.perm[axis % x.rank] != x.rank - 1:
        raise Unsupported(f"{what} over ONNX axis {axis} of {x.onnx_shape}: cnnc's layer_norm "
                          f"normalises the channels only (here ONNX axis "
                          f"{x.perm.index(x.rank - 1)})")


def _layer_normalization(cx: Context, node: OnnxNode) -> None:
    _check_outputs_unused(cx, node, 1, "Mean or InvStdDev")
    x = cx.tensor(node, 0)
    axis = node.attrs.get("axis", -1)
    if not -x.rank <= axis < x.rank:
        raise Unsupported(f"axis={axis} is out of range for rank {x.rank}")
    if axis % x.rank != x.rank - 1:
        raise Unsupported(f"axis={axis} normalises ONNX axes {axis % x.rank} to {x.rank - 1} "
                          "together; cnnc's layer_norm normalises the last axis only")
    _channels_last(x, axis, "normalising")
    if node.attrs.get("stash_type", 1) != 1:
        raise Unsupported(f"stash_type={node.attrs['stash_type']}: cnnc computes the "
                          "statistics in float32")
    gamma = _affine_vector(cx.constant(node, 1, "Scale"), x, "Scale")
    beta = _affine_vector(cx.constant(node, 2, "B"), x, "B")
    _emit_layer_norm(cx, node, node, x, gamma, beta, node.attrs.get("epsilon", 1e-5))


# ---------------------------------------------------------------- global max pooling


def _global_maxpool(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    _needs_layout(x)
    layer = cx.layer(node, "global_maxpool2d", [x], {"keepdims": True}, hint=_hint(node))
    cx.define(node, Tensor(layer, NCHW, None, x.nonneg))


def _reduce_axes(cx: Context, node: OnnxNode) -> tuple[int, ...] | None:
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = tuple(int(a) for a in cx.constant(node, 1, "axes").reshape(-1))
    return axes


def _reduce_max(cx: Context, node: OnnxNode) -> None:
    """ReduceMax over the two spatial axes: PyTorch's AdaptiveMaxPool2d(1) (dynamo)."""
    x = cx.tensor(node, 0)
    axes = _reduce_axes(cx, node)
    if node.attrs.get("noop_with_empty_axes", 0):
        raise Unsupported("noop_with_empty_axes=1")
    if x.rank != 4 or axes is None or sorted(x.perm[a % 4] for a in axes) != [1, 2]:
        raise Unsupported(f"axes={axes}: cnnc lowers ReduceMax only over the spatial axes of "
                          "a 4-D tensor (global max pooling)")
    keep = bool(node.attrs.get("keepdims", 1))
    layer = cx.layer(node, "global_maxpool2d", [x], {"keepdims": keep}, hint=_hint(node))
    perm = x.perm if keep else tuple(0 if p == 0 else 1 for p in x.perm if p in (0, 3))
    cx.define(node, Tensor(layer, perm, None, x.nonneg))


NORM_RULES: dict[str, Rule] = {
    "LayerNormalization": Rule(_layer_normalization, ("axis", "epsilon", "stash_type")),
    "GlobalMaxPool": Rule(_global_maxpool),
    "ReduceMax": Rule(_reduce_max, ("axes", "keepdims", "noop_with_empty_axes")),
}
RULES.update(NORM_RULES)


# ---------------------------------------------------------------- pattern helpers


def _next(cx: Context, value: str, op: str | tuple[str, ...]) -> OnnxNode | None:
    """The one node reading `value`, if it has operator `op` and nothing else reads `value`
    (nor is it a graph output)."""
    readers = cx.readers.get(value, ())
    if len(readers) != 1 or value in cx.outputs:
        return None
    node = readers[0]
    ops = (op,) if isinstance(op, str) else op
    return node if node.op in ops and node.domain in ("", "ai.onnx") else None


def _known(cx: Context, value: str, depth: int = 0) -> np.ndarray | None:
    """`value` as a constant, folding the constant nodes that compute it ahead of the loop
    (they are folded again, to the same values, when the loop reaches them); None if it is
    not a constant."""
    if not value:
        return None
    if value in cx.constants:
        return cx.constants[value]
    if value in cx.tensors or depth > 8:
        return None
    producer = next((n for n in cx.graph.nodes if value in n.outputs), None)
    if producer is None:
        return None
    for v in producer.inputs:
        _known(cx, v, depth + 1)
    if not can_fold(producer, cx.constants):
        return None
    try:
        values = fold(producer, [cx.constants.get(v) if v else None
                                 for v in producer.inputs], cx.opset)
    except FoldError:
        return None
    for v, array in zip(producer.outputs, values):
        if v:
            cx.constants[v] = array
    return cx.constants.get(value)


def _operands(cx: Context, node: OnnxNode, computed: str) -> np.ndarray | None:
    """The constant operand of a two-input node whose other operand is `computed`."""
    if len(node.inputs) != 2 or computed not in node.inputs:
        return None
    other = node.inputs[1 - node.inputs.index(computed)]
    return _known(cx, other)


def _target_shape(cx: Context, node: OnnxNode, have: tuple) -> list[int | None] | None:
    """A Reshape's target with the batch as None, 0s copied and one -1 worked out, when its
    first axis is the batch; None otherwise."""
    shape = _known(cx, node.inputs[1]) if len(node.inputs) > 1 else None
    if shape is None or shape.dtype.kind not in "iu":
        return None
    target = [int(v) for v in shape.reshape(-1)]
    if node.attrs.get("allowzero", 0) and 0 in target:  # a literal empty axis
        return None
    if not target or target[0] not in (BATCH, 0, -1) and target[0] != cx.batch:
        return None
    rest = [have[i + 1] if d == 0 and i + 1 < len(have) else d
            for i, d in enumerate(target[1:])]
    per = prod(have[1:])
    if target[0] == -1:
        if -1 in rest or prod(rest) != per:
            return None
    elif rest.count(-1) == 1:
        known = prod(d for d in rest if d != -1)
        if not known or per % known:
            return None
        rest = [per // known if d == -1 else d for d in rest]
    if any(d is None or d < 1 for d in rest) or prod(rest) != per:
        return None
    return [None, *rest]


def _absorb(cx: Context, *nodes: OnnxNode) -> None:
    cx.absorbed.update(n.index for n in nodes)


# ---------------------------------------------------------------- channel shuffle pattern


def _channel_shuffle(cx: Context, node: OnnxNode) -> bool:
    """On ONNX's channel axis (1 of NCHW; the last of a (batch, channels) tensor): that axis
    split into (G, C/G), the two swapped, and merged back."""
    if not cx.has_tensor(node, 0):
        return False
    x = cx.tensor(node, 0)
    if x.order is not None:
        return False
    have = list(x.onnx_shape)
    ax = x.perm.index(x.rank - 1)
    transpose = _next(cx, node.outputs[0], "Transpose")
    back = transpose and _next(cx, transpose.outputs[0], "Reshape")
    if back is None or back.inputs[0] != transpose.outputs[0]:
        return False
    grouped = _target_shape(cx, node, x.onnx_shape)
    if (grouped is None or len(grouped) != x.rank + 1 or grouped[:ax] != have[:ax]
            or grouped[ax + 2:] != have[ax + 1:] or grouped[ax] * grouped[ax + 1] != have[ax]):
        return False
    perm = list(range(x.rank + 1))
    perm[ax], perm[ax + 1] = ax + 1, ax
    if transpose.attrs.get("perm") != tuple(perm):
        return False
    swapped = [grouped[p] for p in perm]
    if _target_shape(cx, back, tuple(swapped)) != have:
        return False
    hint = _hint(back) or _hint(node)
    layer = cx.layer(node, "channel_shuffle", [x], {"groups": grouped[ax]}, hint=hint,
                     value=back.outputs[0])
    cx.define(back, Tensor(layer, x.perm, None, x.nonneg))
    _absorb(cx, transpose, back)
    return True


# ---------------------------------------------------------------- LayerNorm2d pattern


def _channel_mean(cx: Context, node: OnnxNode, x: Tensor) -> bool:
    """Whether a ReduceMean node averages x over its channels only, keeping the axis."""
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1:
        known = _known(cx, node.inputs[1])
        axes = None if known is None else tuple(int(a) for a in known.reshape(-1))
    return (axes is not None and len(axes) == 1 and -x.rank <= axes[0] < x.rank
            and x.perm[axes[0] % x.rank] == x.rank - 1 and node.attrs.get("keepdims", 1) == 1
            and not node.attrs.get("noop_with_empty_axes", 0))


def _scalar(value: np.ndarray | None) -> float | None:
    if value is None or value.size != 1 or value.dtype.kind not in "fiu":
        return None
    return float(value.reshape(-1)[0])


def _layer_norm_2d(cx: Context, node: OnnxNode) -> bool:
    if not cx.has_tensor(node, 0):
        return False
    x = cx.tensor(node, 0)
    if x.rank < 2 or not _channel_mean(cx, node, x):
        return False
    xname = node.inputs[0]
    sub = _next(cx, node.outputs[0], "Sub")
    if sub is None or tuple(sub.inputs) != (xname, node.outputs[0]):
        return False
    # (x - mean) is read twice: squared, and divided by the standard deviation.
    readers = list({r.index: r for r in cx.readers.get(sub.outputs[0], ())}.values())
    if len(readers) != 2 or sub.outputs[0] in cx.outputs:
        return False
    square = next((r for r in readers if r.op in ("Pow", "Mul")), None)
    div = next((r for r in readers if r.op == "Div"), None)
    if square is None or div is None or tuple(div.inputs) != (sub.outputs[0], div.inputs[1]):
        return False
    if square.op == "Pow" and (square.inputs[0] != sub.outputs[0]
                               or _scalar(_known(cx, square.inputs[1])) != 2.0):
        return False
    if square.op == "Mul" and tuple(square.inputs) != (sub.outputs[0],) * 2:
        return False
    var = _next(cx, square.outputs[0], "ReduceMean")
    if var is None or var.inputs[0] != square.outputs[0] or not _channel_mean(cx, var, x):
        return False
    add = _next(cx, var.outputs[0], "Add")
    eps = add and _scalar(_operands(cx, add, var.outputs[0]))
    sqrt = add and eps is not None and eps > 0 and _next(cx, add.outputs[0], "Sqrt")
    if not sqrt or _next(cx, sqrt.outputs[0], "Div") is not div:
        return False
    chain = [sub, square, var, add, sqrt, div]
    out = div
    gamma = beta = None
    mul = _next(cx, div.outputs[0], "Mul")
    if mul is not None and (scale := _operands(cx, mul, div.outputs[0])) is not None:
        gamma = _try_vector(scale, x, "the scale")
        if gamma is not None:
            chain.append(mul)
            out = mul
    shift = _next(cx, out.outputs[0], "Add")
    if shift is not None and (bias := _operands(cx, shift, out.outputs[0])) is not None:
        beta = _try_vector(bias, x, "the shift")
        if beta is not None:
            chain.append(shift)
            out = shift
    _emit_layer_norm(cx, node, out, x, gamma, beta, eps)
    _absorb(cx, *chain)
    return True


def _try_vector(value: np.ndarray, x: Tensor, what: str) -> np.ndarray | None:
    try:
        return _affine_vector(value, x, what)
    except Unsupported:
        return None


Pattern = Callable[[Context, OnnxNode], bool]

# ONNX op of a chain's first node -> the patterns anchored there, tried in order before the
# op's rule (onnx_import._lower_node).
PATTERNS: dict[str, tuple[Pattern, ...]] = {
    "Reshape": (_channel_shuffle,),
    "ReduceMean": (_layer_norm_2d,),
}

__all__ = ["NORM_RULES", "PATTERNS"]
