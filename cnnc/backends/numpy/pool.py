"""Max and average pooling and their gradients (NumPy backend): Keras semantics, and ONNX's.

Max pooling pads with -inf so padding never wins, and ties go to the first maximum of the window
in row-major (kh, kw) order. Average pooling divides by the number of real (unpadded) cells in
each window, as TensorFlow does with 'same', unless count_include_pad counts the declared pads
too (ONNX, PyTorch); cells a ceil_mode window reaches past the pads never count.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.window import scatter_windows, windows
from cnnc.ir.args import Attrs
from cnnc.ir.convpool import pool_attrs_geometry


def pool_geometry(x_shape: tuple[int, ...], attrs: Attrs) -> dict[str, int]:
    return pool_attrs_geometry((x_shape[1], x_shape[2]), attrs)


def _extent(geo: dict[str, int]) -> tuple[int, int]:
    """Rows and columns the windows span, from the top-left padding corner."""
    return ((geo["OH"] - 1) * geo["SH"] + (geo["KH"] - 1) * geo["DH"] + 1,
            (geo["OW"] - 1) * geo["SW"] + (geo["KW"] - 1) * geo["DW"] + 1)


def _pad(x: np.ndarray, geo: dict[str, int], fill: float) -> np.ndarray:
    """x padded before by (PT, PL) and after as far as the windows reach (a ceil_mode window
    may reach past the declared pads, a floor one may stop short of them)."""
    hp, wp = _extent(geo)
    after_h = max(hp - geo["PT"] - x.shape[1], 0)
    after_w = max(wp - geo["PL"] - x.shape[2], 0)
    widths = ((0, 0), (geo["PT"], after_h), (geo["PL"], after_w), (0, 0))
    return np.pad(x, widths, mode="constant", constant_values=fill)


def _flat_windows(x: np.ndarray, geo: dict[str, int], fill: float) -> np.ndarray:
    """(N, OH, OW, KH*KW, C): each window's cells in row-major order."""
    win = windows(_pad(x, geo, fill), geo)
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
    """How many counted cells each output window covers, (1, OH, OW, 1): the real ones, and
    with COUNT_PAD those of the declared pads."""
    hp, wp = _extent(geo)
    h, w = geo["H"], geo["W"]
    counted = np.zeros((1, max(hp, geo["PT"] + h), max(wp, geo["PL"] + w), 1), dtype=dtype)
    if geo["COUNT_PAD"]:
        counted[:, :geo["PT"] + h + geo["PB"], :geo["PL"] + w + geo["PR"]] = 1
    else:
        counted[:, geo["PT"]:geo["PT"] + h, geo["PL"]:geo["PL"] + w] = 1
    return windows(counted, geo).sum(axis=(3, 4))


def avgpool2d(x: np.ndarray, attrs: Attrs) -> np.ndarray:
    geo = pool_geometry(x.shape, attrs)
    return _flat_windows(x, geo, 0.0).sum(axis=3) / _window_counts(geo, x.dtype)


def avgpool2d_grad(dy: np.ndarray, attrs: Attrs, x_shape: tuple[int, ...]) -> np.ndarray:
    geo = pool_geometry(x_shape, attrs)
    share = dy / _window_counts(geo, dy.dtype)
    n, oh, ow, c = dy.shape
    cols = np.broadcast_to(share[:, :, :, None, None, :], (n, oh, ow, geo["KH"], geo["KW"], c))
    return np.ascontiguousarray(scatter_windows(cols, geo))
