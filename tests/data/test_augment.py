"""Augmentation: shifts with zero fill, horizontal flips, reproducible from (seed, epoch)."""

from __future__ import annotations

import numpy as np

from cnnc.data.augment import augment_batch, epoch_augmentation


def _images(n=3, h=5, w=6, c=1):
    return (np.arange(n * h * w * c, dtype=np.float32) + 1).reshape(n, h, w, c)


def test_shift_moves_content_and_fills_with_zeros():
    x = _images(n=1)
    out = augment_batch(x, np.array([[2, -1]]), np.array([False]))
    # dy=2 moves down by two rows, dx=-1 moves left by one column.
    np.testing.assert_array_equal(out[0, 2:, :-1], x[0, :-2, 1:])
    assert not out[0, :2].any() and not out[0, :, -1].any()


def test_flip_reverses_columns_only_where_asked():
    x = _images(n=2)
    out = augment_batch(x, np.zeros((2, 2), int), np.array([True, False]))
    np.testing.assert_array_equal(out[0], x[0, :, ::-1])
    np.testing.assert_array_equal(out[1], x[1])


def test_identity_when_nothing_drawn_and_input_untouched():
    x = _images()
    keep = x.copy()
    out = augment_batch(x, np.array([[1, 1], [0, 0], [-1, 0]]), np.array([True, False, True]))
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(out[1], x[1])


def test_each_image_gets_its_own_shift():
    x = _images(n=2)
    shifts = np.array([[1, 0], [0, 1]])
    out = augment_batch(x, shifts, np.zeros(2, bool))
    for i in range(2):
        alone = augment_batch(x[i:i + 1], shifts[i:i + 1], np.zeros(1, bool))
        np.testing.assert_array_equal(out[i], alone[0])


def test_draws_are_reproducible_and_bounded():
    a = epoch_augmentation(500, seed=1, epoch=4, shift=2, flip=True)
    b = epoch_augmentation(500, seed=1, epoch=4, shift=2, flip=True)
    np.testing.assert_array_equal(a.shifts, b.shifts)
    np.testing.assert_array_equal(a.flips, b.flips)
    assert a.shifts.min() == -2 and a.shifts.max() == 2
    assert 150 < a.flips.sum() < 350
    c = epoch_augmentation(500, seed=1, epoch=5, shift=2, flip=True)
    assert not np.array_equal(a.shifts, c.shifts)


def test_switches_turn_each_part_off():
    off = epoch_augmentation(100, seed=1, epoch=0, shift=0, flip=False)
    assert not off.shifts.any() and not off.flips.any()
    flips_only = epoch_augmentation(100, seed=1, epoch=0, shift=0, flip=True)
    both = epoch_augmentation(100, seed=1, epoch=0, shift=3, flip=True)
    np.testing.assert_array_equal(flips_only.flips, both.flips)


def test_batch_slices_use_positions_in_the_epoch():
    aug = epoch_augmentation(10, seed=0, epoch=0, shift=1, flip=True)
    x = _images(n=4)
    np.testing.assert_array_equal(aug.batch(x, 6, 10),
                                  augment_batch(x, aug.shifts[6:10], aug.flips[6:10]))
