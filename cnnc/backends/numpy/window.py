"""Sliding windows for the NumPy backend: im2col views and their scatter-add inverse.

Convolution and pooling both read a (kh, kw) window per output pixel. `windows` exposes every
window at once as a strided view (no copy, no Python loop over pixels); `scatter_windows` is its
adjoint, adding per-window values back into the input, looping only over the kh*kw kernel taps
(each tap's targets are distinct, so a plain strided `+=` needs no np.add.at).
Geometry comes from cnnc.ir.convpool, the same numbers the OpenCL kernels get as -D options.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnnc.ir.convpool import window_geometry


def geometry(
    x_shape: tuple[int, ...],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    dilation: tuple[int, int] = (1, 1),
) -> dict[str, int]:
    """Window geometry (keys as cnnc.ir.convpool.window_geometry) for an NHWC shape."""
    return window_geometry((x_shape[1], x_shape[2]), kernel, strides, padding, dilation)


def pad(x: np.ndarray, geo: dict[str, int], value: float = 0.0) -> np.ndarray:
    """Pad height and width with `value`: top/left get the smaller half, as TensorFlow does."""
    if not (geo["PT"] or geo["PB"] or geo["PL"] or geo["PR"]):
        return np.ascontiguousarray(x)
    widths = ((0, 0), (geo["PT"], geo["PB"]), (geo["PL"], geo["PR"]), (0, 0))
    return np.pad(x, widths, mode="constant", constant_values=value)


def windows(xp: np.ndarray, geo: dict[str, int]) -> np.ndarray:
    """A read-only view of shape (N, OH, OW, KH, KW, C) over a padded NHWC array."""
    n, _, _, c = xp.shape
    sn, sh, sw, sc = xp.strides
    shape = (n, geo["OH"], geo["OW"], geo["KH"], geo["KW"], c)
    strides = (sn, sh * geo["SH"], sw * geo["SW"], sh * geo["DH"], sw * geo["DW"], sc)
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def scatter_windows(cols: np.ndarray, geo: dict[str, int]) -> np.ndarray:
    """Adjoint of `windows` after `pad`: sum (N, OH, OW, KH, KW, C) values into (N, H, W, C)."""
    n, oh, ow, kh, kw, c = cols.shape
    hp = max(geo["H"] + geo["PT"] + geo["PB"], (oh - 1) * geo["SH"] + (kh - 1) * geo["DH"] + 1)
    wp = max(geo["W"] + geo["PL"] + geo["PR"], (ow - 1) * geo["SW"] + (kw - 1) * geo["DW"] + 1)
    out = np.zeros((n, hp, wp, c), dtype=cols.dtype)
    for i in range(kh):
        r0 = i * geo["DH"]
        rows = slice(r0, r0 + (oh - 1) * geo["SH"] + 1, geo["SH"])
        for j in range(kw):
            c0 = j * geo["DW"]
            cols_ = slice(c0, c0 + (ow - 1) * geo["SW"] + 1, geo["SW"])
            out[:, rows, cols_, :] += cols[:, :, :, i, j, :]
    return out[:, geo["PT"]:geo["PT"] + geo["H"], geo["PL"]:geo["PL"] + geo["W"], :]
