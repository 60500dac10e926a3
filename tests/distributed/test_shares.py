"""The arithmetic of splitting a batch over ranks, against one device's arithmetic."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from cnnc.distributed.shares import combine_batch_stats, shares, weighted_sum


@pytest.mark.parametrize("total, size", [(16, 1), (16, 2), (16, 3), (64, 5), (2, 3), (0, 2)])
def test_shares_cover_the_batch_in_order(total, size):
    parts = shares(total, size)
    assert len(parts) == size and parts[0][0] == 0 and parts[-1][1] == total
    assert all(a[1] == b[0] for a, b in pairwise(parts))
    sizes = [hi - lo for lo, hi in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_combined_statistics_are_the_global_batch_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(37, 5)) * np.array([1, 10, 100, 0.1, 1000])
    cuts = [0, 9, 10, 23, 23, 37]  # uneven parts, one of them empty
    parts = [x[a:b] for a, b in pairwise(cuts)]
    counts = np.array([len(p) for p in parts])
    stats = np.stack([np.stack([p.mean(axis=0), p.var(axis=0)]) if len(p)
                      else np.full((2, 5), np.nan) for p in parts])  # an empty part: anything
    got = combine_batch_stats(counts, stats)
    np.testing.assert_allclose(got, np.stack([x.mean(axis=0), x.var(axis=0)]), rtol=1e-12)


def test_weighted_sums_give_the_global_batch_sum():
    """Each rank's sum is over its own mean-loss gradient (B / b_r times too big): the weights
    b_r / B undo that exactly; a weight-0 rank's values are ignored even if not finite."""
    rng = np.random.default_rng(1)
    per_example = rng.normal(size=(10, 4))
    sizes = [4, 3, 3, 0]
    bounds = np.cumsum([0, *sizes])
    weights = np.array(sizes) / 10
    local = [per_example[a:b].sum(axis=0) * (10 / s) if s else np.full(4, np.inf)
             for a, b, s in zip(bounds, bounds[1:], sizes)]
    np.testing.assert_allclose(weighted_sum(weights, np.stack(local)),
                               per_example.sum(axis=0), rtol=1e-12)
