"""one_cycle's momentum cycling (cycle_momentum, Smith's schedule as torch's OneCycleLR runs it):
the sequence by hand and against PyTorch, the per-step momentum reaching sgd's momentum and
adam's beta_1 on both backends, the training loop handing it over, and the settings' errors.
(Exact resume with cycling on: tests/train/test_optimizer_settings.py's one-cycle recipes.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
from training_spec import TINY_SPEC

import cnnc
from cnnc.errors import InputError, SpecError
from cnnc.ir.train_config import cycles_momentum, parse_train_config
from cnnc.train.lr_schedule import momentum, one_cycle_momentum


def _schedule(value):
    return parse_train_config({"schedule": value}).schedule


def test_momentum_by_hand():
    # 10 steps, pct_start 0.3: the rate peaks at step 2 (0.3 * 10 - 1), momentum bottoms there.
    s = _schedule({"name": "one_cycle", "pct_start": 0.3})
    got = [one_cycle_momentum(s, i, 10) for i in range(10)]
    assert got[0] == pytest.approx(0.95) and got[2] == pytest.approx(0.85)
    assert got[1] == pytest.approx(0.90)  # half-way down the cosine
    assert got[9] == pytest.approx(0.95)
    # step 5 of the second phase (2 .. 9): pct 3/7 of the way back up
    assert got[5] == pytest.approx(0.95 + (0.85 - 0.95) / 2 * (math.cos(math.pi * 3 / 7) + 1))
    three = _schedule({"name": "one_cycle", "three_phase": True, "base_momentum": 0.8,
                       "max_momentum": 0.9})
    assert one_cycle_momentum(three, 2, 10) == pytest.approx(0.8)
    assert [one_cycle_momentum(three, i, 10) for i in range(4, 10)] == pytest.approx([0.9] * 6)
    assert momentum(_schedule("cosine"), 0, 0, 10, 1) is None
    assert momentum(_schedule({"name": "one_cycle", "cycle_momentum": False}), 0, 0, 10, 1) \
        is None


@pytest.mark.parametrize("kwargs", [
    {},
    {"pct_start": 0.25, "base_momentum": 0.8, "max_momentum": 0.99},
    {"three_phase": True, "pct_start": 0.4},
])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_momentum_matches_pytorch(kwargs, optimizer):
    torch = pytest.importorskip("torch")
    epochs, batches = 3, 7
    s = _schedule({"name": "one_cycle", "max_lr": 0.3, **kwargs})
    params = [torch.zeros(1, requires_grad=True)]
    opt = (torch.optim.SGD(params, lr=0.3, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(params, lr=0.3))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.3, epochs=epochs,
                                                steps_per_epoch=batches, **kwargs)
    want, got = [], []
    for e in range(epochs):
        for b in range(batches):
            group = opt.param_groups[0]
            want.append(group["momentum"] if optimizer == "sgd" else group["betas"][0])
            got.append(momentum(s, e, b, batches, epochs))
            opt.step()
            sched.step()
    assert got == pytest.approx(want, rel=1e-12, abs=0)


ADAM = TINY_SPEC.replace("optimizer: {name: adam, learning_rate: 0.01}",
                         "optimizer: {name: adam, learning_rate: 0.01, beta_1: BETA}")
SGD = TINY_SPEC.replace("optimizer: {name: adam, learning_rate: 0.01}",
                        "optimizer: {name: sgd, learning_rate: 0.05, momentum: BETA}")


@pytest.mark.parametrize("spec", [ADAM, SGD], ids=["adam", "sgd"])
def test_a_steps_momentum_stands_in_for_the_optimizers(spec, backend):
    """Three steps at momentum 0.7 given per step equal three steps of an optimizer whose own
    momentum (beta_1) is 0.7: bit for bit, on each backend."""
    x = np.random.default_rng(1).random((8, 12, 12, 1)).astype(np.float32)
    y = np.arange(8) % 10
    given = cnnc.compile(spec.replace("BETA", "0.3"), backend=backend)
    own = cnnc.compile(spec.replace("BETA", "0.7"), backend=backend)
    own.set_weights(given.get_weights())
    for lr in (0.01, 0.02, 0.005):
        given.train_step(x, y, learning_rate=lr, momentum=0.7)
        own.train_step(x, y, learning_rate=lr)
    a, b = given.get_training_state(), own.get_training_state()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    other = cnnc.compile(spec.replace("BETA", "0.3"), backend=backend)
    other.set_weights(own.get_weights())
    with pytest.raises(InputError, match=r"momentum must be a number in \[0, 1\], got 1.5"):
        other.train_step(x, y, momentum=1.5)


def test_the_loop_hands_each_step_its_momentum(tiny_data):
    """fit's steps get OneCycleLR's momentum sequence (PyTorch's where present)."""
    spec = TINY_SPEC.replace("schedule: {name: cosine, warmup_epochs: 1}",
                             "schedule: {name: one_cycle, max_lr: 0.02}")
    model = cnnc.compile(spec, backend="numpy")
    seen: list[float | None] = []
    queue = model.queue_train_step

    def recording(x, y, **kw):
        seen.append(kw.get("momentum"))
        queue(x, y, **kw)

    model.queue_train_step = recording
    model.fit(data_dir=tiny_data, epochs=2, verbose=0)
    batches = len(seen) // 2  # 128 training examples in batches of 16
    assert batches == 8 and seen[0] == pytest.approx(0.95)
    s = model.train_config.schedule
    assert seen == [momentum(s, e, b, batches, 2) for e in range(2) for b in range(batches)]
    assert min(seen) == pytest.approx(0.85, abs=1e-3)
    off = cnnc.compile(spec.replace("max_lr: 0.02", "max_lr: 0.02, cycle_momentum: false"),
                       backend="numpy")
    assert not cycles_momentum(off.train_config)


def test_settings_errors_name_the_key():
    nadam = {"optimizer": "nadam", "schedule": {"name": "one_cycle", "cycle_momentum": True}}
    with pytest.raises(SpecError, match="nadam has none that cnnc can cycle") as err:
        parse_train_config(nadam)
    assert err.value.path == "train.schedule.cycle_momentum"
    plain = {"optimizer": {"name": "sgd"}, "schedule": {"name": "one_cycle",
                                                        "cycle_momentum": True}}
    with pytest.raises(SpecError, match="sgd without momentum"):
        parse_train_config(plain)
    # the default leaves an optimizer without a momentum to cycle as it is
    assert not cycles_momentum(parse_train_config({"optimizer": "nadam",
                                                   "schedule": "one_cycle"}))
    assert cycles_momentum(parse_train_config({"optimizer": "adamw", "schedule": "one_cycle"}))
    with pytest.raises(SpecError, match="base_momentum 0.96 is above max_momentum 0.95"):
        parse_train_config({"optimizer": "adam", "schedule": {
            "name": "one_cycle", "base_momentum": 0.96}})
