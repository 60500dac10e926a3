"""NumPy implementations of the transposed convolution ops (cnnc/ir/conv_transpose.py).

Written from the definition, tap by tap: input pixel i of a transposed convolution meets output
pixel o = i * stride - pad + tap * dilation (pad: transpose_window's padding before), so

    y[n, o, f]   += x[n, i, c] * kernel[tap, f, c]        (forward: a scatter)
    dx[n, i, c]  += dy[n, o, f] * kernel[tap, f, c]       (gather from the same pixels)
    dk[tap, f, c] += dy[n, o, f] * x[n, i, c]

with o outside the output skipped. Each tap is one strided slice of a zero-framed output and one
matrix product, so nothing loops over pixels.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.activations import activate
from cnnc.backends.numpy.call import Call, Impl
from cnnc.ir.args import Attrs
from cnnc.ir.conv_transpose import transpose_window


class _Frame:
    """The output framed with zeros so that every tap's slice lies inside: frame row r is
    output row r - pad_before, so input row i meets frame row i * stride + tap * dilation."""

    def __init__(self, attrs: Attrs, in_hw: tuple[int, int]) -> None:
        win = transpose_window(attrs, in_hw)
        self.out_hw = win.out_hw
        self.pad = win.pad_before
        self.in_hw = in_hw
        self.k = attrs["kernel_size"]
        self.s = attrs["strides"]
        self.d = attrs["dilation_rate"]
        # Frame row r is output row r - pad; it must hold every tap's rows and the output.
        self.size = tuple(
            max((in_hw[a] - 1) * self.s[a] + (self.k[a] - 1) * self.d[a] + 1,
                self.pad[a] + self.out_hw[a]) for a in range(2))

    def tap(self, a: int, b: int) -> tuple[slice, slice]:
        """The frame rows and columns that tap (a, b) reaches from every input pixel."""
        r0, c0 = a * self.d[0], b * self.d[1]
        return (slice(r0, r0 + (self.in_hw[0] - 1) * self.s[0] + 1, self.s[0]),
                slice(c0, c0 + (self.in_hw[1] - 1) * self.s[1] + 1, self.s[1]))

    def output(self) -> tuple[slice, slice]:
        return (slice(self.pad[0], self.pad[0] + self.out_hw[0]),
                slice(self.pad[1], self.pad[1] + self.out_hw[1]))


def conv2d_transpose(x: np.ndarray, kernel: np.ndarray, attrs: Attrs) -> np.ndarray:
    """Before bias and activation: (N, out_h, out_w, filters)."""
    n, h, w, _ = x.shape
    fr = _Frame(attrs, (h, w))
    frame = np.zeros((n, *fr.size, kernel.shape[2]), dtype=x.dtype)
    for a in range(fr.k[0]):
        for b in range(fr.k[1]):
            rows, cols = fr.tap(a, b)
            frame[:, rows, cols, :] += x @ kernel[a, b].T
    rows, cols = fr.output()
    return np.ascontiguousarray(frame[:, rows, cols, :])


def _framed_dy(dy: np.ndarray, fr: _Frame) -> np.ndarray:
    frame = np.zeros((dy.shape[0], *fr.size, dy.shape[3]), dtype=dy.dtype)
    rows, cols = fr.output()
    frame[:, rows, cols, :] = dy
    return frame


def conv2d_transpose_grad_input(dy: np.ndarray, kernel: np.ndarray, attrs: Attrs) -> np.ndarray:
    h, w, c = attrs["input_shape"]
    fr = _Frame(attrs, (h, w))
    frame = _framed_dy(dy, fr)
    dx = np.zeros((dy.shape[0], h, w, c), dtype=dy.dtype)
    for a in range(fr.k[0]):
        for b in range(fr.k[1]):
            rows, cols = fr.tap(a, b)
            dx += frame[:, rows, cols, :] @ kernel[a, b]
    return dx


def conv2d_transpose_grad_kernel(x: np.ndarray, dy: np.ndarray, attrs: Attrs) -> np.ndarray:
    _, h, w, c = x.shape
    fr = _Frame(attrs, (h, w))
    frame = _framed_dy(dy, fr)
    kh, kw = fr.k
    dk = np.zeros((kh, kw, dy.shape[3], c), dtype=dy.dtype)
    xs = x.reshape(-1, c)
    for a in range(kh):
        for b in range(kw):
            rows, cols = fr.tap(a, b)
            dk[a, b] = frame[:, rows, cols, :].reshape(-1, dy.shape[3]).T @ xs
    return dk


def _conv2d_transpose(call: Call, x: np.ndarray, kernel: np.ndarray,
                      bias: np.ndarray | None = None) -> np.ndarray:
    y = conv2d_transpose(x, kernel, call.attrs)
    if bias is not None:
        y = y + bias
    return activate(call.attrs["activation"], y)


CONV_TRANSPOSE_IMPLS: dict[str, Impl] = {
    "conv2d_transpose": _conv2d_transpose,
    "conv2d_transpose_grad_input": lambda call, dy, kernel: conv2d_transpose_grad_input(
        dy, kernel, call.attrs),
    "conv2d_transpose_grad_kernel": lambda call, x, dy: conv2d_transpose_grad_kernel(
        x, dy, call.attrs),
}
