"""NumPy implementations of local response normalisation and its gradient (cnnc/ir/lrn.py),
keyed by op name: the reference the OpenCL kernels (kernels/lrn.cl) are checked against."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl


def _window_sum(call: Call, v: np.ndarray) -> np.ndarray:
    """Per channel, the sum of v over the `size` channels centred on it, clipped at the edges
    (channels past either end count as zeros)."""
    half = call.attrs["size"] // 2
    padded = np.pad(v, [(0, 0)] * (v.ndim - 1) + [(half, half)])
    channels = v.shape[-1]
    out = np.zeros_like(v)
    for k in range(2 * half + 1):  # a few adds of whole arrays, not a loop over channels
        out = out + padded[..., k:k + channels]
    return out


def _divisor(call: Call, x: np.ndarray) -> np.ndarray:
    """bias + alpha / size * the window's sum of squares."""
    a = call.attrs
    return call.const(a["bias"]) + call.const(a["alpha"] / a["size"]) * _window_sum(call, x * x)


def _lrn(call: Call, x: np.ndarray) -> np.ndarray:
    return x * _divisor(call, x) ** call.const(-call.attrs["beta"])


def _lrn_grad(call: Call, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dy * d^-beta on the direct path; through the divisors, each d[c] = ... + alpha/size *
    x[j]^2 for every j in c's window (the windows are symmetric: j's window holds c too)."""
    a = call.attrs
    d = _divisor(call, x)
    beta = call.const(a["beta"])
    t = dy * x * d ** (-beta - 1)
    coefficient = call.const(2 * a["alpha"] * a["beta"] / a["size"])
    return dy * d ** -beta - coefficient * x * _window_sum(call, t)


LRN_IMPLS: dict[str, Impl] = {
    "lrn": _lrn,
    "lrn_grad": _lrn_grad,
}
