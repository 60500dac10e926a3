"""NumPy implementations of the fused ops (cnnc/ir/fused.py), keyed by op name: the reference
for the folded batch norm (the fold, then the implementation of the op's `base` layer)."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.fused import FOLDED_LAYER


def fold_batchnorm(
    attrs, kernel: np.ndarray, bias: np.ndarray | None, params: list[np.ndarray], dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """The kernel and bias of a layer with the batch norm after it folded in, per output
    channel: the kernel's last axis, or for a depthwise (KH, KW, C, M) kernel its last two (output
    channel c * M + m). params: [gamma if scale] [beta if center] mean variance."""
    params = list(params)
    gamma = params.pop(0) if attrs["scale"] else None
    beta = params.pop(0) if attrs["center"] else None
    mean, var = params
    scale = 1 / np.sqrt(var + dtype.type(attrs["epsilon"]))
    if gamma is not None:
        scale = gamma * scale
    shift = -mean if bias is None else bias - mean
    shift = shift * scale
    if beta is not None:
        shift = shift + beta
    # Row-major, the output channel is the flat index modulo the channel count in all three.
    return (kernel.reshape(-1, len(scale)) * scale).reshape(kernel.shape), shift


def _folded(layer: str) -> Impl:
    run_layer = LAYER_IMPLS[layer]

    def impl(call: Call, x: np.ndarray, kernel: np.ndarray, *rest: np.ndarray) -> np.ndarray:
        bias = rest[0] if call.attrs["use_bias"] else None
        bn = list(rest[1:] if call.attrs["use_bias"] else rest)
        w, b = fold_batchnorm(call.attrs, kernel, bias, bn, call.dtype)
        return run_layer(call, x, w, b)
    return impl


FUSED_IMPLS: dict[str, Impl] = {op: _folded(layer) for layer, op in FOLDED_LAYER.items()}
