"""Keras default initialisation from a seed: reproducible, independent per tensor."""

from __future__ import annotations

import math

import numpy as np

from cnnc.initializers import initial_values
from cnnc.testing.nets import chain


def test_glorot_uniform_limits_and_spread():
    g = chain((8, 8, 16), ("conv2d", 32, 3), ("flatten",), ("dense", 64))
    v = initial_values(g.state, seed=1)
    for name, (fan_in, fan_out) in {"conv2d/kernel": (9 * 16, 9 * 32),
                                    "dense/kernel": (6 * 6 * 32, 64)}.items():
        limit = math.sqrt(6 / (fan_in + fan_out))
        w = v[name]
        assert w.dtype == np.float32
        assert np.abs(w).max() <= limit
        assert np.abs(w).max() > 0.95 * limit  # fills the range
        assert abs(w.std() - limit / math.sqrt(3)) < 0.05 * limit  # uniform's std
    assert not v["conv2d/bias"].any() and not v["dense/bias"].any()


def test_grouped_conv_fans_follow_keras():
    g = chain((4, 4, 8), ("conv2d", 8, 3, {"groups": 4}))
    spec = g.state_map["conv2d/kernel"]
    assert spec.shape == (3, 3, 2, 8) and spec.fan == (18, 72)


def test_batchnorm_initial_values():
    g = chain((4,), ("batchnorm",))
    v = initial_values(g.state, seed=0)
    np.testing.assert_array_equal(v["batch_normalization/gamma"], 1)
    np.testing.assert_array_equal(v["batch_normalization/beta"], 0)
    np.testing.assert_array_equal(v["batch_normalization/moving_mean"], 0)
    np.testing.assert_array_equal(v["batch_normalization/moving_variance"], 1)


def test_same_seed_same_values_other_seed_other_values():
    g = chain((6,), ("dense", 5))
    a, b, c = (initial_values(g.state, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a["dense/kernel"], b["dense/kernel"])
    assert not np.array_equal(a["dense/kernel"], c["dense/kernel"])


def test_adding_a_layer_changes_no_other_layers_values():
    small = chain((6,), ("dense", 5), ("dense", 3))
    big = chain((6,), ("dense", 5), ("dense", 3), ("dense", 2))
    a, b = initial_values(small.state, seed=7), initial_values(big.state, seed=7)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_float64_initial_values():
    g = chain((6,), ("dense", 5))
    assert initial_values(g.state, 0, "float64")["dense/kernel"].dtype == np.float64
