"""NumPy implementation of the channel slice and its gradient (cnnc/ir/channel_slice.py), keyed
by op name."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl


def _channel_slice(call: Call, x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x[..., call.attrs["start"]:call.attrs["stop"]])


def _channel_slice_grad(call: Call, dy: np.ndarray) -> np.ndarray:
    a = call.attrs
    dx = np.zeros((*dy.shape[:-1], a["channels"]), dtype=dy.dtype)
    dx[..., a["start"]:a["stop"]] = dy
    return dx


CHANNEL_SLICE_IMPLS: dict[str, Impl] = {
    "channel_slice": _channel_slice,
    "channel_slice_grad": _channel_slice_grad,
}
