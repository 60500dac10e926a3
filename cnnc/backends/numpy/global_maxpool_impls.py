"""NumPy implementations of global max pooling and its gradient (cnnc/ir/global_maxpool.py),
keyed by op name. Ties go to the first maximum in row-major (h, w) order, as maxpool2d's
gradient does (cnnc/backends/numpy/pool.py)."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl


def _global_maxpool2d(call: Call, x: np.ndarray) -> np.ndarray:
    return x.max(axis=(1, 2), keepdims=call.attrs["keepdims"])


def _global_maxpool2d_grad(call: Call, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    first = x.reshape(n, h * w, c).argmax(axis=1)  # argmax returns the first of equal maxima
    onehot = np.arange(h * w).reshape(1, h * w, 1) == first[:, None, :]
    dx = np.where(onehot, dy.reshape(n, 1, c), dy.dtype.type(0))
    return np.ascontiguousarray(dx.reshape(n, h, w, c))


GLOBAL_MAXPOOL_IMPLS: dict[str, Impl] = {
    "global_maxpool2d": _global_maxpool2d,
    "global_maxpool2d_grad": _global_maxpool2d_grad,
}
