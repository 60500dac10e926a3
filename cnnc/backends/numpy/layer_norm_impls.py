"""NumPy implementations of layer normalisation and its gradient ops (cnnc/ir/layer_norm.py),
keyed by op name: the reference the OpenCL kernels (kernels/layer_norm.cl) are checked against."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl


def _normalised(call: Call, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(xhat, 1/sqrt(var + epsilon)) per row of the last axis; two passes over each row, so
    that a large mean does not cancel the variance away."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    inv_std = 1 / np.sqrt(var + call.const(call.attrs["epsilon"]))
    return (x - mean) * inv_std, inv_std


def _layer_norm(call: Call, x: np.ndarray, *affine: np.ndarray) -> np.ndarray:
    """Operands after x: [gamma if scale] [beta if center]."""
    y, _ = _normalised(call, x)
    rest = list(affine)
    if call.attrs["scale"]:
        y = y * rest.pop(0)
    if call.attrs["center"]:
        y = y + rest.pop(0)
    return y


def _grad_input(call: Call, x: np.ndarray, dy: np.ndarray,
                gamma: np.ndarray | None = None) -> np.ndarray:
    xhat, inv_std = _normalised(call, x)
    g = dy * gamma if gamma is not None else dy
    return (g - g.mean(axis=-1, keepdims=True)
            - xhat * (g * xhat).mean(axis=-1, keepdims=True)) * inv_std


def _grad_gamma(call: Call, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    xhat, _ = _normalised(call, x)
    return (dy * xhat).reshape(-1, x.shape[-1]).sum(axis=0)


def _grad_sums(call: Call, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return np.stack([dy.reshape(-1, x.shape[-1]).sum(axis=0), _grad_gamma(call, x, dy)])


LAYER_NORM_IMPLS: dict[str, Impl] = {
    "layer_norm": _layer_norm,
    "layer_norm_grad_input": _grad_input,
    "layer_norm_grad_gamma": _grad_gamma,
    "layer_norm_grad_sums": _grad_sums,
}
