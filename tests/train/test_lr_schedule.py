"""Learning-rate schedules, against the formulas documented in cnnc/ir/train_config.py."""

from __future__ import annotations

import itertools
import math

import pytest

from cnnc.ir.train_config import parse_train_config
from cnnc.train.lr_schedule import describe, learning_rate


def _schedule(value):
    return parse_train_config({"schedule": value}).schedule


def test_constant():
    s = _schedule("constant")
    assert {learning_rate(s, 0.1, e, b, 10, 5) for e in range(5) for b in range(10)} == {0.1}


def test_step_changes_only_at_epoch_boundaries():
    s = _schedule({"name": "step", "factor": 0.5, "every": 2})
    rates = [learning_rate(s, 1.0, e, b, 4, 6) for e in range(6) for b in range(4)]
    assert rates == [1.0] * 8 + [0.5] * 8 + [0.25] * 8


def test_exponential_is_smooth_within_an_epoch():
    s = _schedule({"name": "exponential", "factor": 0.5})
    assert learning_rate(s, 1.0, 0, 0, 4, 3) == 1.0
    assert learning_rate(s, 1.0, 1, 0, 4, 3) == pytest.approx(0.5)
    assert learning_rate(s, 1.0, 0, 2, 4, 3) == pytest.approx(0.5 ** 0.5)


def test_cosine_with_warmup():
    s = _schedule({"name": "cosine", "warmup_epochs": 1, "min_factor": 0.1})
    batches, epochs = 4, 5
    warm = [learning_rate(s, 2.0, 0, b, batches, epochs) for b in range(batches)]
    assert warm == pytest.approx([0.5, 1.0, 1.5, 2.0])  # ends at the base rate, never 0
    assert learning_rate(s, 2.0, 1, 0, batches, epochs) == pytest.approx(2.0)
    mid = learning_rate(s, 2.0, 3, 0, batches, epochs)  # progress 0.5
    assert mid == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    last = learning_rate(s, 2.0, 4, 3, batches, epochs)
    assert 0.2 < last < learning_rate(s, 2.0, 4, 0, batches, epochs)


def test_cosine_without_warmup_starts_at_base_and_decays():
    s = _schedule("cosine")
    rates = [learning_rate(s, 1.0, e, b, 10, 3) for e in range(3) for b in range(10)]
    assert rates[0] == 1.0
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert rates[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 29 / 30)))


def test_describe():
    assert describe(_schedule("constant")) == "constant"
    assert describe(_schedule({"name": "step", "factor": 0.5})) == "step (every=5, factor=0.5)"
