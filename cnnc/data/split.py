"""Validation hold-out and per-epoch example order, both pure functions of their arguments.

The hold-out follows Keras' `validation_split`: the LAST fraction of the training arrays, taken
before any shuffling, with the split point floor(n * (1 - fraction)). A count (`size`) holds out
exactly that many examples, which is how the seed recipe's 5,000 images are expressed without
floating-point doubt.

Epoch order derives from (seed, epoch) alone, so a run resumed at epoch k sees the same order as
one that never stopped, with no generator state to save.
"""

from __future__ import annotations

import math

import numpy as np

from cnnc.errors import DataError

# Streams of randomness a training run draws, kept apart by this third seed word.
STREAM_SHUFFLE = 1
STREAM_AUGMENT = 2
STREAM_NOISE = 3  # a denoising autoencoder's input noise (cnnc/data/augment.py)


def epoch_rng(seed: int, epoch: int, stream: int) -> np.random.Generator:
    """A generator for one purpose in one epoch, independent of every other (seed, epoch)."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, stream]))


def validation_split_point(n: int, fraction: float = 0.0, size: int | None = None) -> int:
    """Index where the validation part starts: examples [point, n) are held out."""
    if size is not None:
        if size == 0:
            return n
        if not 0 < size < n:
            raise DataError(f"cannot hold out {size} validation examples from {n} training "
                            "examples", hint="lower validation_size or use more data (--limit)")
        return n - size
    if fraction <= 0.0:
        return n
    point = math.floor(n * (1.0 - fraction))
    if point <= 0 or point >= n:
        raise DataError(f"training data holds {n} examples, too few to split with "
                        f"validation_split={fraction}",
                        hint="use more data or a different validation_split")
    return point


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The order in which epoch `epoch` visits n examples (a permutation, or 0..n-1)."""
    if not shuffle:
        return np.arange(n)
    return epoch_rng(seed, epoch, STREAM_SHUFFLE).permutation(n)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, stop) of each batch; the last one may be short, as in Keras."""
    return [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
