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


# ---------------------------------------------------------------- one_cycle


def test_one_cycle_by_hand():
    # 10 steps, max 1.0, pct_start 0.3: rises over steps 0..2 (phase end 2.0) from 1/25 to 1,
    # then falls over steps 2..9 to 1/25/1e4. Step 1 is halfway up: (1/25 + 1) / 2.
    s = _schedule({"name": "one_cycle", "max_lr": 1.0})
    rates = [learning_rate(s, 0.5, e, b, 5, 2) for e in range(2) for b in range(5)]
    assert rates[0] == pytest.approx(0.04)
    assert rates[1] == pytest.approx(0.52)
    assert rates[2] == pytest.approx(1.0)
    assert rates[9] == pytest.approx(4e-6)
    # Halfway down (step 5.5 of 2..9 is not a step; step 4 is 2/7 of the way down):
    assert rates[4] == pytest.approx(4e-6 + (1 - 4e-6) / 2 * (1 + math.cos(math.pi * 2 / 7)))


def test_one_cycle_peak_defaults_to_the_optimizer_rate():
    s = _schedule({"name": "one_cycle", "pct_start": 0.5, "div_factor": 10})
    assert learning_rate(s, 0.2, 0, 0, 4, 1) == pytest.approx(0.02)
    assert learning_rate(s, 0.2, 0, 1, 4, 1) == pytest.approx(0.2)
    assert describe(s).startswith("one_cycle (")


@pytest.mark.parametrize("kwargs", [
    {},
    {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0},
    {"three_phase": True},
    {"three_phase": True, "pct_start": 0.4, "div_factor": 5.0},
])
@pytest.mark.parametrize("epochs,batches", [(3, 7), (1, 10), (5, 2)])
def test_one_cycle_matches_pytorch(kwargs, epochs, batches):
    torch = pytest.importorskip("torch")
    max_lr = 0.3
    s = _schedule({"name": "one_cycle", "max_lr": max_lr, **kwargs})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=max_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, epochs=epochs, steps_per_epoch=batches, cycle_momentum=False,
        **kwargs)
    want, got = [], []
    for e in range(epochs):
        for b in range(batches):
            want.append(opt.param_groups[0]["lr"])
            got.append(learning_rate(s, 0.01, e, b, batches, epochs))
            opt.step()
            sched.step()
    assert got == pytest.approx(want, rel=1e-12, abs=0)


@pytest.mark.parametrize("value,message", [
    ({"name": "one_cycle", "pct_start": 1.0}, r"pct_start.*\(0, 1\)"),
    ({"name": "one_cycle", "max_lr": 0}, "max_lr.*strictly positive"),
    ({"name": "one_cycle", "max_lr": float("inf")}, "max_lr.*finite"),
    ({"name": "one_cycle", "cycle": 2}, "unknown key 'cycle'"),
])
def test_one_cycle_bad_settings_name_the_key(value, message):
    from cnnc.errors import SpecError

    with pytest.raises(SpecError, match=message):
        _schedule(value)


def test_one_cycle_on_runs_too_short_for_a_rise_ends_at_the_lowest_rate():
    # With pct_start * steps < 1 the rising phase ends before step 0 (PyTorch divides by zero
    # when a phase has no length); every rate is finite and the last is max / 25 / 1e4.
    s = _schedule("one_cycle")
    for steps in (1, 2, 3):
        rates = [learning_rate(s, 1.0, 0, b, steps, 1) for b in range(steps)]
        assert all(math.isfinite(r) and r > 0 for r in rates), rates
        assert rates[-1] == pytest.approx(4e-6)
