"""NumPy implementation of the channel shuffle (cnnc/ir/channel_shuffle.py), keyed by op name:
ShuffleNet's reshape, transpose and reshape of the last axis."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Impl


def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    *lead, c = x.shape
    grouped = x.reshape(*lead, groups, c // groups)
    return np.ascontiguousarray(np.swapaxes(grouped, -1, -2).reshape(*lead, c))


CHANNEL_SHUFFLE_IMPLS: dict[str, Impl] = {
    "channel_shuffle": lambda call, x: channel_shuffle(x, call.attrs["groups"]),
}
