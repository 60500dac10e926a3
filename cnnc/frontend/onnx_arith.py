"""ONNX front end: element-wise arithmetic (Add, Sum, Sub, Mul, Div, Max, Min, Mean) lowered to
cnnc layers; onnx_ops.py's table dispatches every one of these ops through `arithmetic` there.

Between computed tensors: the broadcasting merges (cnnc/ir/merges.py). ONNX broadcasts
right-aligned over every axis, cnnc over the non-batch axes in its own layout; inputs of one
rank in one layout (perm) broadcast axis by axis alike in both, so an ONNX (N, C, 1, 1) gate
times an (N, C, H, W) map is cnnc's (N, 1, 1, C) times (N, H, W, C). Inputs of different ranks
would broadcast ONNX's batch axis and are refused.

With a constant operand, a scalar or per-channel constant is a per-channel affine map
x * scale + shift (input normalisation (x - mean) / std, batch norm written out as Mul and Add):
a 1x1 depthwise_conv2d with that kernel and bias, trainable like any layer and exported back as
a grouped Conv. A second constant right after folds into it (x - mean, then / std: one layer).
"""

from __future__ import annotations

import numpy as np

from cnnc.frontend.onnx_graph import OnnxNode
from cnnc.frontend.onnx_lowering import NCHW, Context, Tensor, Unsupported, clean_name

# ONNX op -> the cnnc merge computing it from computed tensors.
MERGES = {"Add": "add", "Sum": "add", "Sub": "subtract", "Mul": "multiply", "Max": "maximum",
          "Min": "minimum", "Mean": "average"}


def _hint(node: OnnxNode) -> str | None:
    return clean_name(node.name, node.op)


def _same_order(a: Tensor, b: Tensor) -> bool:
    if a.order is None or b.order is None:
        return a.order is None and b.order is None
    return bool(np.array_equal(a.order, b.order))


def merge(cx: Context, node: OnnxNode, xs: list[Tensor]) -> None:
    """`node` of computed inputs `xs` as its cnnc merge, broadcasting as ONNX does."""
    op = MERGES.get(node.op)
    if op is None:
        raise Unsupported(f"cnnc has no merge computing {node.op} of two computed tensors "
                          "(it divides by constants only)")
    if len(xs) == 1:
        cx.define(node, xs[0])
        return
    first = xs[0]
    for x in xs[1:]:
        if x.rank != first.rank:
            raise Unsupported(f"inputs of ONNX shapes {[t.onnx_shape for t in xs]} have "
                              "different ranks: ONNX would broadcast the batch axis")
        if x.perm != first.perm or not _same_order(x, first):
            raise Unsupported(f"inputs of ONNX shapes {[t.onnx_shape for t in xs]} are in "
                              "different cnnc layouts")
    nonneg = (any if op == "maximum" else all)(x.nonneg for x in xs) and op != "subtract"
    inner = first.layer
    if (op in ("multiply", "add") and len(xs) == 2 and inner.op == op
            and cx.sole_reader(first, node.inputs[0], node)):
        # a chain of binary Mul (Add) nodes is one n-ary merge (cnnc's export writes one so)
        inner.decl.inputs = [*(inner.decl.inputs or ()), xs[1].layer.decl]
        inner.shape = cx.infer(op, {}, [cx.shape_of(d) for d in inner.decl.inputs])
        inner.hint, inner.value = _hint(node), node.outputs[0]
        cx.define(node, Tensor(inner, first.perm, first.order, nonneg))
        return
    layer = cx.layer(node, op, xs, {}, hint=_hint(node))
    cx.define(node, Tensor(layer, first.perm, first.order, nonneg))


def _per_channel(x: Tensor, c: np.ndarray, what: str) -> np.ndarray:
    """A constant operand as one value per channel of a 4-D NCHW tensor: a scalar, or of shape
    (C, 1, 1) or (1, C, 1, 1)."""
    channels = x.shape[-1]
    if c.size == 1 and c.ndim <= x.rank:
        return np.full((channels,), c.reshape(-1)[0], dtype=np.float32)
    if (c.ndim in (3, 4) and c.shape[-3:] == (channels, 1, 1)
            and c.shape[:-3] in ((), (1,))):
        return c.reshape(-1).astype(np.float32)
    raise Unsupported(f"{what} has shape {c.shape}; cnnc applies a scalar or a per-channel "
                      f"constant, of shape ({channels}, 1, 1), to ONNX shape {x.onnx_shape}")


def _is_affine(layer) -> bool:
    """A 1x1 depthwise convolution with no activation: a per-channel x * k + b."""
    kw = layer.keywords
    return (layer.op == "depthwise_conv2d" and tuple(kw.get("kernel_size", ())) == (1, 1)
            and kw.get("depth_multiplier", 1) == 1
            and tuple(kw.get("strides", (1, 1))) in ((1, 1), 1)
            and kw.get("activation", "linear") == "linear" and "kernel" in layer.params)


def affine(cx: Context, node: OnnxNode) -> None:
    """Add, Sub, Mul or Div of one computed tensor and one constant, per channel or scalar."""
    if len([v for v in node.inputs if v]) != 2:
        raise Unsupported(f"{node.op} of one computed tensor and constants takes two inputs")
    i = 0 if cx.has_tensor(node, 0) else 1
    x = cx.tensor(node, i)
    if x.rank != 4 or x.perm != NCHW:
        raise Unsupported(f"applying a constant to ONNX shape {x.onnx_shape}: cnnc applies "
                          "constants per channel to 4-D NCHW tensors only (or as the bias of "
                          "the layer before)")
    c = _per_channel(x, cx.weight(node, 1 - i, "the constant operand"), "the constant operand")
    one = np.ones_like(c)
    if node.op == "Add":
        scale, shift = one, c
    elif node.op == "Mul":
        scale, shift = c, np.zeros_like(c)
    elif node.op == "Sub":
        scale, shift = (one, -c) if i == 0 else (-one, c)
    elif node.op == "Div" and i == 0:
        if not np.all(c != 0):
            raise Unsupported("dividing by a constant that holds 0")
        scale, shift = (one / c).astype(np.float32), np.zeros_like(c)
    else:
        raise Unsupported(f"{node.op} with the constant first: cnnc divides a tensor by a "
                          "constant, not a constant by a tensor")
    producer = x.layer
    if _is_affine(producer) and cx.sole_reader(x, node.inputs[i], node):
        kernel = producer.params["kernel"] * scale.reshape(1, 1, -1, 1)
        bias = producer.params.get("bias", np.zeros_like(c)) * scale + shift
        if not producer.keywords.get("use_bias", True):
            cx.relayer(producer, use_bias=True)
        producer.params.update(kernel=kernel.astype(np.float32), bias=bias.astype(np.float32))
        producer.value = node.outputs[0]
        cx.define(node, Tensor(producer, x.perm, x.order))
        return
    keywords = {"kernel_size": (1, 1), "use_bias": True}
    params = {"kernel": scale.reshape(1, 1, -1, 1).astype(np.float32),
              "bias": shift.astype(np.float32)}
    layer = cx.layer(node, "depthwise_conv2d", [x], keywords, params, hint=_hint(node))
    cx.define(node, Tensor(layer, NCHW))
