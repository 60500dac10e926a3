"""Max and average pooling and their gradients (NumPy backend), Keras semantics.

Max pooling pads with -inf so padding never wins, and ties go to the first maximum of the window
in row-major (kh, kw) order. Average pooling with 'same' padding divides by the number of real
(unpadded) cells in each window, as TensorFlow does.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.window import geometry, pad, scatter_windows, windows
from cnnc.ir.args import Attrs
from cnnc.ir.layers import pool_strides


def pool_geometry(x_shape: tuple[int, ...], attrs: Attrs) -> dict[str, int]:
    return geometry(x_shape, attrs["pool_size"], pool_strides(attrs), attrs["padding"])


def _flat_windows(x: np.ndarray, geo: dict[str, int], fill: float) -> np.ndarray:
    """(N, OH, OW, KH*KW, C): each window's cells in row-major order."""
    win = windows(pad(x, geo, fill), geo)
    n, oh, ow, kh, kw, c = win.shape
    return win.reshape(n, oh, ow, kh * kw, c)


def maxpool_argmax(x: np.ndarray, attrs: Attrs) -> np.ndarray:
    """The winning cell of each window, an index into its KH*KW cells: (N, OH, OW, C)."""
    geo = pool_geometry(x.shape, attrs)
    return _flat_windows(x, geo, -np.inf).argmax(axis=3)


def maxpool2d(x: np.ndarray, attrs: Attrs) -> np.ndarray:
    geo = pool_geometry(x.shape, attrs)
    return _flat_windows(x, geo, -np.inf).max(axis=3)


def maxpool2d_grad(x: np.ndarray, dy: np.ndarray, attrs: Attrs) -> np.ndarray:
    geo = pool_geometry(x.shape, attrs)
    win = _flat_windows(x, geo, -np.inf)
    taps = win.shape[3]
    first_max = win.argmax(axis=3)  # argmax returns the first of equal maxima
    onehot = np.arange(taps).reshape(1, 1, 1, taps, 1) == first_max[:, :, :, None, :]
    cols = np.where(onehot, dy[:, :, :, None, :], dy.dtype.type(0))
    n, oh, ow, _, c = cols.shape
    cols = cols.reshape(n, oh, ow, geo["KH"], geo["KW"], c)
    return np.ascontiguousarray(scatter_windows(cols, geo))


def _window_counts(geo: dict[str, int], dtype: np.dtype) -> np.ndarray:
    """How many real cells each output window covers: (1, OH, OW, 1)."""
    ones = np.ones((1, geo["H"], geo["W"], 1), dtype=dtype)
    return _flat_windows(ones, geo, 0.0).sum(axis=3)


def avgpool2d(x: np.ndarray, attrs: Attrs) -> np.ndarray:
    geo = pool_geometry(x.shape, attrs)
    return _flat_windows(x, geo, 0.0).sum(axis=3) / _window_counts(geo, x.dtype)


def avgpool2d_grad(dy: np.ndarray, attrs: Attrs, x_shape: tuple[int, ...]) -> np.ndarray:
    geo = pool_geometry(x_shape, attrs)
    share = dy / _window_counts(geo, dy.dtype)
    n, oh, ow, c = dy.shape
    cols = np.broadcast_to(share[:, :, :, None, None, :], (n, oh, ow, geo["KH"], geo["KW"], c))
    return np.ascontiguousarray(scatter_windows(cols, geo))
