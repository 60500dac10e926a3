"""Grouped, strided, dilated 2-D convolution by im2col and matrix products (NumPy backend).

The forward pass and both gradients share one layout: patches as (groups, rows, taps) where
rows = N*OH*OW and taps = KH*KW*(C/groups), the kernel as (groups, taps, F/groups). Output
channel f belongs to group f // (F/groups), as in Keras and TensorFlow.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.window import geometry, pad, scatter_windows, windows
from cnnc.ir.args import Attrs


def conv_geometry(x_shape: tuple[int, ...], attrs: Attrs) -> dict[str, int]:
    return geometry(x_shape, attrs["kernel_size"], attrs["strides"], attrs["padding"],
                    attrs["dilation_rate"])


def _patches(x: np.ndarray, geo: dict[str, int], groups: int) -> np.ndarray:
    """(groups, N*OH*OW, KH*KW*Cg): every receptive field, one row per output pixel."""
    n, _, _, c = x.shape
    win = windows(pad(x, geo), geo)  # N, OH, OW, KH, KW, C
    rows = n * geo["OH"] * geo["OW"]
    cg = c // groups
    win = win.reshape(n, geo["OH"], geo["OW"], geo["KH"], geo["KW"], groups, cg)
    win = win.transpose(5, 0, 1, 2, 3, 4, 6)
    return win.reshape(groups, rows, geo["KH"] * geo["KW"] * cg)


def _grouped_kernel(kernel: np.ndarray, groups: int) -> np.ndarray:
    """(KH, KW, Cg, F) -> (groups, KH*KW*Cg, F/groups)."""
    kh, kw, cg, f = kernel.shape
    k = kernel.reshape(kh, kw, cg, groups, f // groups).transpose(3, 0, 1, 2, 4)
    return k.reshape(groups, kh * kw * cg, f // groups)


def _grouped_dy(dy: np.ndarray, groups: int) -> np.ndarray:
    """(N, OH, OW, F) -> (groups, N*OH*OW, F/groups)."""
    n, oh, ow, f = dy.shape
    return dy.reshape(n * oh * ow, groups, f // groups).transpose(1, 0, 2)


def conv2d(x: np.ndarray, kernel: np.ndarray, attrs: Attrs) -> np.ndarray:
    """The convolution before bias and activation: (N, OH, OW, F)."""
    groups = attrs["groups"]
    geo = conv_geometry(x.shape, attrs)
    out = _patches(x, geo, groups) @ _grouped_kernel(kernel, groups)  # G, rows, Fg
    n, f = x.shape[0], kernel.shape[3]
    return out.transpose(1, 0, 2).reshape(n, geo["OH"], geo["OW"], f)


def conv2d_grad_kernel(x: np.ndarray, dy: np.ndarray, attrs: Attrs) -> np.ndarray:
    """d kernel, summed over the batch: (KH, KW, Cg, F)."""
    groups = attrs["groups"]
    geo = conv_geometry(x.shape, attrs)
    cols = _patches(x, geo, groups)  # G, rows, taps
    dk = cols.transpose(0, 2, 1) @ _grouped_dy(dy, groups)  # G, taps, Fg
    kh, kw = attrs["kernel_size"]
    cg = x.shape[3] // groups
    dk = dk.reshape(groups, kh, kw, cg, dy.shape[3] // groups).transpose(1, 2, 3, 0, 4)
    return np.ascontiguousarray(dk.reshape(kh, kw, cg, dy.shape[3]))


def conv2d_grad_input(dy: np.ndarray, kernel: np.ndarray, attrs: Attrs,
                      x_shape: tuple[int, ...]) -> np.ndarray:
    """dx: each output's gradient spread back over its receptive field (a transposed conv)."""
    groups = attrs["groups"]
    geo = conv_geometry(x_shape, attrs)
    dcols = _grouped_dy(dy, groups) @ _grouped_kernel(kernel, groups).transpose(0, 2, 1)
    n, _, _, c = x_shape
    kh, kw = attrs["kernel_size"]
    dcols = dcols.reshape(groups, n, geo["OH"], geo["OW"], kh, kw, c // groups)
    dcols = dcols.transpose(1, 2, 3, 4, 5, 0, 6).reshape(n, geo["OH"], geo["OW"], kh, kw, c)
    return np.ascontiguousarray(scatter_windows(dcols, geo))
