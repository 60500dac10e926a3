"""Augmentation of training batches: random shifts with zero fill and horizontal flips; and the
Gaussian noise a denoising autoencoder (train target input, noise) learns to remove.

Draws are made once per epoch for every position in that epoch's order, from (seed, epoch), so a
batch's augmentation depends only on where it falls in the epoch: reproducible, and identical in
a resumed run. Validation and test images are never augmented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnc.data.split import STREAM_AUGMENT, STREAM_NOISE, epoch_rng


@dataclass(frozen=True)
class EpochAugmentation:
    shifts: np.ndarray  # (n, 2) int: (dy, dx) per position in the epoch, in [-shift, shift]
    flips: np.ndarray  # (n,) bool

    def batch(self, x: np.ndarray, start: int, stop: int) -> np.ndarray:
        return augment_batch(x, self.shifts[start:stop], self.flips[start:stop])


def epoch_augmentation(n: int, seed: int, epoch: int, shift: int, flip: bool) -> EpochAugmentation:
    rng = epoch_rng(seed, epoch, STREAM_AUGMENT)
    # Flips are drawn first and always, so turning flips off leaves the shifts as they were.
    flips = rng.random(n) < 0.5
    if not flip:
        flips = np.zeros(n, dtype=bool)
    shifts = rng.integers(-shift, shift + 1, size=(n, 2)) if shift else np.zeros((n, 2), int)
    return EpochAugmentation(shifts.astype(np.int64), flips)


def augment_batch(x: np.ndarray, shifts: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Shift each NHWC image by its (dy, dx), zero-filling what moves in, then flip if asked.

    A positive dy moves the content down, a positive dx moves it right.
    """
    n, h, w, _ = x.shape
    out = x
    if np.any(shifts):
        pad = int(np.abs(shifts).max())
        padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        # Output pixel (i, j) of image b reads padded (i + pad - dy, j + pad - dx).
        rows = (pad - shifts[:, 0])[:, None] + np.arange(h)[None, :]
        cols = (pad - shifts[:, 1])[:, None] + np.arange(w)[None, :]
        b = np.arange(n)[:, None, None]
        out = padded[b, rows[:, :, None], cols[:, None, :]]
    if np.any(flips):
        out = out.copy() if out is x else out
        out[flips] = out[flips, :, ::-1]
    return out


# Evaluation noise is drawn as if at this epoch: a fixed draw per set, apart from training's.
EVAL_NOISE_EPOCH = -1


def noisy(x: np.ndarray, std: float, seed: int, epoch: int, start: int = 0) -> np.ndarray:
    """x (N, H, W, C) in [0, 1] plus Gaussian noise of `std`, clipped to [0, 1], float32.

    The noise of a training batch depends only on (seed, epoch, the batch's first position in
    the epoch's order): reproducible, and identical in a resumed run. Validation and test sets
    use epoch EVAL_NOISE_EPOCH, so they are the same noisy images after every epoch.
    """
    if std <= 0:
        return x
    # SeedSequence takes non-negative words only: the evaluation epoch -1 becomes 2**32 - 1.
    rng = np.random.default_rng(np.random.SeedSequence(
        [seed & 0xFFFFFFFF, epoch & 0xFFFFFFFF, STREAM_NOISE, start]))
    out = x + rng.normal(0.0, std, size=x.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)
