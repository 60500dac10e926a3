"""NumPy implementations of batch norm's sums ops (cnnc/ir/distributed_ops.py), keyed by op name."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl


def _xhat_parts(call: Call, x: np.ndarray, stats: np.ndarray):
    """(axes summed over, xhat, 1/sqrt(var + epsilon)), as batchnorm_grad_input computes them."""
    axes = tuple(range(x.ndim - 1))
    inv_std = 1 / np.sqrt(stats[1] + call.const(call.attrs["epsilon"]))
    return axes, (x - stats[0]) * inv_std, inv_std


def _batchnorm_grad_sums(call: Call, x: np.ndarray, stats: np.ndarray,
                         dy: np.ndarray) -> np.ndarray:
    axes, xhat, _ = _xhat_parts(call, x, stats)
    return np.stack([dy.sum(axis=axes), (dy * xhat).sum(axis=axes)])


def _batchnorm_grad_apply(call: Call, x: np.ndarray, stats: np.ndarray, dy: np.ndarray,
                          sums: np.ndarray, gamma: np.ndarray | None = None) -> np.ndarray:
    _, xhat, inv_std = _xhat_parts(call, x, stats)
    rows = call.const(x.size // x.shape[-1])
    g = dy * gamma if gamma is not None else dy
    scale = gamma if gamma is not None else call.const(1.0)
    return (g - scale * sums[0] / rows - xhat * (scale * sums[1] / rows)) * inv_std


DISTRIBUTED_IMPLS: dict[str, Impl] = {
    "batchnorm_grad_sums": _batchnorm_grad_sums,
    "batchnorm_grad_apply": _batchnorm_grad_apply,
    "sums_row": lambda call, sums: sums[call.attrs["row"]].copy(),
}
