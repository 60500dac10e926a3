"""The arithmetic of splitting a global batch over ranks and putting its sums back together.

Pure functions of their arguments, so tests check them against one device's arithmetic directly:
- `shares`: which examples of a global batch each rank takes (contiguous, sizes within one);
- `combine_batch_stats`: the global batch's mean and biased variance from each rank's (Chan et
  al.'s pairwise formula, in float64: no cancellation, whatever the ranks' sizes);
- `weighted_sum`: sums over the global batch from each rank's sums of its share of the loss.

Why the weights: each rank's loss is the mean over its own b_r examples, so its gradients are
B / b_r times its examples' part of the global (mean over B) gradient. Summing w_r = b_r / B
times each rank's gradients gives the global gradient. Batch norm's backward sums are scaled the
same way, and a rank that holds no example of a (last, short) batch takes weight 0.
"""

from __future__ import annotations

import numpy as np


def shares(total: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) of each rank's part of `total` examples; the first total % size get one
    more. A rank's part is empty when total < size."""
    base, extra = divmod(total, size)
    bounds, start = [], 0
    for r in range(size):
        stop = start + base + (1 if r < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def combine_batch_stats(counts: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """(2, C) global [mean; biased variance] from each rank's row count and (2, C) stats."""
    counts = np.asarray(counts, np.float64)
    held = counts > 0  # a rank with no rows may hold anything, even values that are not finite
    counts, stats = counts[held], np.asarray(stats, np.float64)[held]
    total = counts.sum()
    if total <= 0:
        raise ValueError("no rank holds a row of the batch")
    w = (counts / total)[:, None]
    mean = (w * stats[:, 0]).sum(axis=0)
    var = (w * (stats[:, 1] + (stats[:, 0] - mean) ** 2)).sum(axis=0)
    return np.stack([mean, var])


def weighted_sum(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """sum_r weights[r] * values[r], in rank order (float64); weight 0 ignores a value even if it
    is not finite (a rank that computed on a stand-in example)."""
    out = np.zeros(values.shape[1:], np.float64)
    for w, v in zip(np.asarray(weights, np.float64), np.asarray(values, np.float64)):
        if w != 0.0:
            out += w * v
    return out
