"""ONNX front end: PyTorch's nn.LocalResponseNorm as its dynamo exporter writes it out, matched
as one chain and lowered to cnnc's lrn (cnnc/ir/lrn.py); the LRN operator itself is a rule in
onnx_ops.RULES.

On an (N, C, H, W) map x, torch.nn.functional.local_response_norm computes

    Mul(x, x) -> Reshape (N, 1, C, H, W) -> Pad axis 2 by (size // 2, (size - 1) // 2) with
    zeros -> AveragePool kernel (size, 1, 1), stride 1 -> Squeeze axis 1 -> Mul alpha -> Add k
    -> Pow beta -> Div(x, that)

which is lrn size alpha beta bias=k for an odd size (the mean over the padded window is the
window's sum of squares over size). Registered into onnx_norm_ops.PATTERNS under Mul, tried
before the Mul rule; each intermediate value must be read by the next node only, so the chain
computes nothing else. Any other form (an even size, other pads or kernels, the TorchScript
exporter's version with its shape arithmetic and If) is left to the rules node by node.
"""

from __future__ import annotations

from cnnc.frontend.onnx_graph import OnnxNode
from cnnc.frontend.onnx_lowering import NCHW, Context, Tensor
from cnnc.frontend.onnx_norm_ops import (
    PATTERNS,
    _absorb,
    _known,
    _next,
    _operands,
    _scalar,
    _target_shape,
)
from cnnc.frontend.onnx_ops import _hint, float32_value


def _ints(cx: Context, node: OnnxNode, attr: str, index: int) -> tuple[int, ...] | None:
    """An int list given as attribute `attr` (older opsets) or as constant input `index`."""
    if attr in node.attrs:
        return tuple(int(v) for v in node.attrs[attr])
    if len(node.inputs) > index and node.inputs[index]:
        value = _known(cx, node.inputs[index])
        if value is not None and value.dtype.kind in "iu":
            return tuple(int(v) for v in value.reshape(-1))
    return None


def _zero_pad(cx: Context, pad: OnnxNode) -> tuple[int, int] | None:
    """(before, after) of a constant zero Pad of axis 2 of a 5-D tensor alone."""
    if pad.attrs.get("mode", "constant") not in ("constant", b"constant"):
        return None
    if len(pad.inputs) > 3 and pad.inputs[3]:  # axes (opset 18)
        return None
    if len(pad.inputs) > 2 and pad.inputs[2] and _scalar(_known(cx, pad.inputs[2])) != 0.0:
        return None
    if pad.attrs.get("value", 0.0) != 0.0:
        return None
    pads = _ints(cx, pad, "pads", 1)
    if pads is None or len(pads) != 10 or any(p for i, p in enumerate(pads) if i % 5 != 2):
        return None
    return pads[2], pads[7]


def _window_pool(pool: OnnxNode) -> int | None:
    """The window of an AveragePool over axis 2 alone, stride 1, no padding of its own."""
    a = pool.attrs
    kernel = tuple(a.get("kernel_shape", ()))
    if len(kernel) != 3 or kernel[1:] != (1, 1) or any(s != 1 for s in a.get("strides", ())):
        return None
    if any(a.get("pads", ())) or a.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        return None
    if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", ())):
        return None
    return kernel[0]


def _local_response_norm(cx: Context, node: OnnxNode) -> bool:
    if not cx.has_tensor(node, 0) or tuple(node.inputs) != (node.inputs[0],) * 2:
        return False
    x = cx.tensor(node, 0)
    if x.rank != 4 or x.perm != NCHW or x.order is not None:
        return False
    _, c, h, w = x.onnx_shape
    view = _next(cx, node.outputs[0], "Reshape")
    if view is None or _target_shape(cx, view, x.onnx_shape) != [None, 1, c, h, w]:
        return False
    pad = _next(cx, view.outputs[0], "Pad")
    pool = pad and _next(cx, pad.outputs[0], "AveragePool")
    squeeze = pool and _next(cx, pool.outputs[0], "Squeeze")
    if not squeeze or (pads := _zero_pad(cx, pad)) is None:
        return False
    size = _window_pool(pool)
    if size is None or size % 2 == 0 or pads != (size // 2, size // 2):
        return False
    if _ints(cx, squeeze, "axes", 1) not in ((1,), (-4,)):
        return False
    scale = _next(cx, squeeze.outputs[0], "Mul")
    alpha = scale and _scalar(_operands(cx, scale, squeeze.outputs[0]))
    shift = scale and alpha is not None and _next(cx, scale.outputs[0], "Add")
    bias = shift and _scalar(_operands(cx, shift, scale.outputs[0]))
    power = shift and bias is not None and _next(cx, shift.outputs[0], "Pow")
    if not power or power.inputs[0] != shift.outputs[0]:
        return False
    beta = _scalar(_known(cx, power.inputs[1]))
    div = beta is not None and _next(cx, power.outputs[0], "Div")
    if not div or tuple(div.inputs) != (node.inputs[0], power.outputs[0]):
        return False
    if alpha < 0 or bias <= 0:  # cnnc's lrn keeps its divisor positive
        return False
    keywords = {"size": size, "alpha": float32_value(alpha), "beta": float32_value(beta),
                "bias": float32_value(bias)}
    layer = cx.layer(node, "lrn", [x], keywords, hint=_hint(div), value=div.outputs[0])
    cx.define(div, Tensor(layer, x.perm, None, x.nonneg))
    _absorb(cx, view, pad, pool, squeeze, scale, shift, power, div)
    return True


PATTERNS["Mul"] = (*PATTERNS.get("Mul", ()), _local_response_norm)
