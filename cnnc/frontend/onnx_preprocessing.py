"""ONNX front end: input normalisation by constants as cnnc's preprocessing layers
(cnnc/ir/preprocessing.py), one of onnx_ops.py's ARITHMETIC_PATTERNS.

A scalar Mul, Div, Add or Sub applied to a graph input (or to the rescaling it already became) is
a `rescaling` (x / 255, then - 0.5: one layer). A per-channel Sub of a graph input or of a
rescaling is a `normalization` with that mean and a variance of one, and a per-channel Div by
positive constants right after it sets its variance to their squares: torchvision's
(x - mean) / std, and cnnc's own export of both layers. The statistics stay constants (not
trainable), unlike the 1x1 depthwise convolution other per-channel constants become
(onnx_arith.py). On a rank-2 tensor, which the generic rules refuse, the same layers take
constants of any producer (cnnc's export of a normalization after a flatten). Anything else is
left to the generic rules.
"""

from __future__ import annotations

import numpy as np

from cnnc.frontend.onnx_arith import _per_channel
from cnnc.frontend.onnx_graph import OnnxNode
from cnnc.frontend.onnx_lowering import NCHW, Context, Tensor, Unsupported, clean_name


def _scalar_map(op: str, v: float, first: bool) -> tuple[float, float] | None:
    """(scale, offset) of x op v (first: x is the first operand); None if not one."""
    if op == "Mul":
        return v, 0.0
    if op == "Add":
        return 1.0, v
    if op == "Sub":
        return (1.0, -v) if first else (-1.0, v)
    if op == "Div" and first and v != 0:
        return 1.0 / v, 0.0
    return None


def _rescale(cx: Context, node: OnnxNode, x: Tensor, value: str, v: float, i: int) -> bool:
    mapped = _scalar_map(node.op, v, i == 0)
    if mapped is None:
        return False
    scale, offset = mapped
    producer = x.layer
    hint = clean_name(node.name, node.op)
    if producer.op == "rescaling" and cx.sole_reader(x, value, node):
        kw = producer.keywords
        cx.relayer(producer, scale=kw["scale"] * scale,
                   offset=kw.get("offset", 0.0) * scale + offset)
        producer.value, producer.hint = node.outputs[0], producer.hint or hint
        cx.define(node, Tensor(producer, x.perm, x.order))
        return True
    if producer.op != "input" and x.rank == 4:
        return False
    layer = cx.layer(node, "rescaling", [x], {"scale": scale, "offset": offset}, hint=hint)
    cx.define(node, Tensor(layer, x.perm, x.order))
    return True


def _normalise(cx: Context, node: OnnxNode, x: Tensor, value: str, c: np.ndarray) -> bool:
    """Sub of a per-channel mean, or Div by a per-channel standard deviation."""
    producer = x.layer
    hint = clean_name(node.name, node.op)
    if node.op == "Div":
        if not np.all(c > 0):
            return False
        variance = c.astype(np.float64) ** 2
        if (producer.op == "normalization" and cx.sole_reader(x, value, node)
                and np.all(producer.params["variance"] == 1.0)):
            cx.relayer(producer, variance=tuple(float(v) for v in variance))
            producer.params["variance"] = variance.astype(np.float32)
            producer.value, producer.hint = node.outputs[0], producer.hint or hint
            cx.define(node, Tensor(producer, x.perm, x.order))
            return True
        mean = np.zeros_like(c)
    elif node.op == "Sub":
        mean, variance = c, np.ones_like(c, dtype=np.float64)
    else:
        return False
    if producer.op not in ("input", "rescaling") and x.rank == 4:
        return False
    keywords = {"mean": tuple(float(v) for v in mean),
                "variance": tuple(float(v) for v in variance)}
    params = {"mean": mean.astype(np.float32), "variance": variance.astype(np.float32)}
    layer = cx.layer(node, "normalization", [x], keywords, params, hint=hint)
    cx.define(node, Tensor(layer, x.perm, x.order))
    return True


def input_scaling(cx: Context, node: OnnxNode) -> bool:
    """Lower `node` as (part of) a preprocessing layer if it is one; False leaves it."""
    if node.op not in ("Mul", "Div", "Add", "Sub") or len([v for v in node.inputs if v]) != 2:
        return False
    computed = [cx.has_tensor(node, i) for i in (0, 1)]
    if computed.count(True) != 1:
        return False
    i = computed.index(True)
    x, value = cx.tensor(node, i), node.inputs[i]
    if x.layer.op not in ("input", "rescaling", "normalization") and x.rank == 4:
        return False
    try:
        c = cx.weight(node, 1 - i, "the constant operand")
    except Unsupported:
        return False
    if c.size == 1 and c.ndim <= x.rank:
        return _rescale(cx, node, x, value, float(c.reshape(-1)[0]), i)
    if i != 0:
        return False
    if x.rank == 2 and c.shape in ((x.shape[-1],), (1, x.shape[-1])):
        per_channel = c.reshape(-1)
        if x.order is not None:  # ONNX column j is cnnc column order[j]
            per_channel = np.empty_like(per_channel)
            per_channel[x.order] = c.reshape(-1)
        return _normalise(cx, node, x, value, per_channel)
    if x.rank != 4 or x.perm != NCHW:
        return False
    try:
        per_channel = _per_channel(x, c, "the constant operand")
    except Unsupported:
        return False
    return _normalise(cx, node, x, value, per_channel)
