"""Graph.concrete_shape: a value's shape at a batch size, as both backends allocate and check it."""

from __future__ import annotations

import pytest

from cnnc.testing.nets import chain


def test_the_batch_dimension_takes_the_batch_size():
    g = chain((6, 6, 2), ("conv2d", 3, 3), ("flatten",), ("dense", 4))
    assert g.concrete_shape("input_layer", 5) == (5, 6, 6, 2)
    assert g.concrete_shape("conv2d", 1) == (1, 4, 4, 3)
    assert g.concrete_shape("dense", 7) == (7, 4)


def test_state_has_no_batch_dimension():
    g = chain((4,), ("dense", 3))
    assert g.concrete_shape("dense/kernel", 9) == (4, 3)


def test_an_unknown_value_is_a_key_error():
    g = chain((4,), ("dense", 3))
    with pytest.raises(KeyError):
        g.concrete_shape("nothing", 2)
