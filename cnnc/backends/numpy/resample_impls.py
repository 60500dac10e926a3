"""NumPy implementations of the resampling ops (cnnc/ir/resample.py), keyed by op name.

Upsampling is linear in its input and separable by axis, so it is written as one matrix per
axis (output rows x input rows): the forward applies them, the gradient their transposes, and
the two cannot disagree.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl


def axis_weights(n: int, scale: int, interpolation: str) -> np.ndarray:
    """(n * scale, n) float64 weights: output position o reads input positions with these."""
    out = np.arange(n * scale)
    m = np.zeros((n * scale, n))
    if interpolation == "nearest":
        m[out, out // scale] = 1.0
        return m
    # Half-pixel centres, clamped at the edges (PyTorch align_corners=False, Keras 3).
    src = np.maximum((out + 0.5) / scale - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    frac = src - i0
    np.add.at(m, (out, i0), 1.0 - frac)
    np.add.at(m, (out, i1), frac)
    return m


def _weights(call: Call, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    sh, sw = call.attrs["size"]
    interp = call.attrs["interpolation"]
    return (axis_weights(h, sh, interp).astype(call.dtype),
            axis_weights(w, sw, interp).astype(call.dtype))


def _upsampling2d(call: Call, x: np.ndarray) -> np.ndarray:
    mh, mw = _weights(call, x.shape[1], x.shape[2])
    return np.ascontiguousarray(np.einsum("oh,nhwc,pw->nopc", mh, x, mw))


def _upsampling2d_grad(call: Call, dy: np.ndarray) -> np.ndarray:
    h, w, _ = call.attrs["input_shape"]
    mh, mw = _weights(call, h, w)
    return np.ascontiguousarray(np.einsum("oh,nopc,pw->nhwc", mh, dy, mw))


def _cropping2d(call: Call, x: np.ndarray) -> np.ndarray:
    (t, b), (left, r) = call.attrs["cropping"]
    return np.ascontiguousarray(x[:, t:x.shape[1] - b, left:x.shape[2] - r, :])


RESAMPLE_IMPLS: dict[str, Impl] = {
    "upsampling2d": _upsampling2d,
    "upsampling2d_grad": _upsampling2d_grad,
    "cropping2d": _cropping2d,
}
