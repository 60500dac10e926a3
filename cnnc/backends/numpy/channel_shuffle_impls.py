"""NumPy implementations of the channel shuffle (cnnc/ir/channel_shuffle.py) and of its fused
form with the concatenation before it (cnnc/ir/concat_shuffle.py), keyed by op name: ShuffleNet's
reshape, transpose and reshape of the last axis."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Impl


def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    *lead, c = x.shape
    grouped = x.reshape(*lead, groups, c // groups)
    return np.ascontiguousarray(np.swapaxes(grouped, -1, -2).reshape(*lead, c))


def concat_shuffle(xs: tuple[np.ndarray, ...], groups: int, start: int, stop: int) -> np.ndarray:
    """The definition spelled out: concatenate, shuffle, slice."""
    shuffled = channel_shuffle(np.concatenate(xs, axis=-1), groups)
    return np.ascontiguousarray(shuffled[..., start:stop])


CHANNEL_SHUFFLE_IMPLS: dict[str, Impl] = {
    "channel_shuffle": lambda call, x: channel_shuffle(x, call.attrs["groups"]),
    "concat_shuffle": lambda call, *xs: concat_shuffle(xs, call.attrs["groups"],
                                                       call.attrs["start"], call.attrs["stop"]),
}
