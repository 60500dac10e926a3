"""Validation hold-out (Keras semantics), per-epoch order and batches."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.data.split import batch_bounds, epoch_order, validation_split_point
from cnnc.errors import DataError


def test_keras_validation_split_takes_the_last_fraction():
    # Keras 3: split_at = floor(n * (1 - validation_split)); the tail is validation.
    assert validation_split_point(100, 0.2) == 80
    assert validation_split_point(10, 0.25) == 7
    assert validation_split_point(60000, 5000 / 60000) == 55000
    assert validation_split_point(60000, 0.0) == 60000


def test_validation_size_holds_out_exactly_that_many():
    assert validation_split_point(60000, size=5000) == 55000
    assert validation_split_point(100, size=0) == 100


@pytest.mark.parametrize("kwargs", [{"fraction": 0.999}, {"size": 100}, {"size": 101}])
def test_impossible_splits_are_errors(kwargs):
    with pytest.raises(DataError):
        validation_split_point(100, **kwargs)


def test_epoch_order_is_a_reproducible_permutation():
    a = epoch_order(1000, seed=3, epoch=2)
    assert sorted(a.tolist()) == list(range(1000))
    np.testing.assert_array_equal(a, epoch_order(1000, seed=3, epoch=2))
    assert not np.array_equal(a, epoch_order(1000, seed=3, epoch=3))
    assert not np.array_equal(a, epoch_order(1000, seed=4, epoch=2))
    np.testing.assert_array_equal(epoch_order(5, 3, 2, shuffle=False), np.arange(5))


def test_batches_cover_everything_with_a_short_last_batch():
    assert batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_bounds(8, 4) == [(0, 4), (4, 8)]
