"""Learning-rate schedules: the rate for each training step, from the `train.schedule` settings.

The formulas are the ones documented beside SCHEDULES in cnnc/ir/train_config.py. `epoch` below is
fractional (epoch index + batch / batches per epoch) for the smooth schedules (exponential,
cosine) and whole for the step schedule; one_cycle counts steps (epoch * batches + batch) over
epochs * batches in all, as torch.optim.lr_scheduler.OneCycleLR stepped once per batch, and
cycles the momentum as it does (cycle_momentum). The training loop hands the results to
Model.train_step(learning_rate=..., momentum=...), so both backends see the same numbers.
"""

from __future__ import annotations

import math

from cnnc.ir.args import Attrs


def learning_rate(schedule: Attrs, base: float, epoch: int, batch: int, batches: int,
                  epochs: int) -> float:
    """The rate for batch `batch` (0-based) of `batches` in epoch `epoch` of `epochs`."""
    name = schedule["name"]
    frac = epoch + batch / max(batches, 1)
    if name == "constant":
        return base
    if name == "step":
        return base * schedule["factor"] ** (epoch // schedule["every"])
    if name == "exponential":
        return base * schedule["factor"] ** frac
    if name == "cosine":
        warmup = schedule["warmup_epochs"]
        if frac < warmup:
            # Linear warm-up that ends at `base`; counted at the end of the step so that the
            # very first step does not have a rate of zero.
            return base * (frac + 1.0 / max(batches, 1)) / warmup
        span = max(epochs - warmup, 1)
        progress = min((frac - warmup) / span, 1.0)
        low = schedule["min_factor"]
        return base * (low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress)))
    if name == "one_cycle":
        return one_cycle(schedule, base, epoch * batches + batch, epochs * batches)
    raise ValueError(f"unknown schedule {name!r}")  # config.py rejects these before here


def _cos_anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def _one_cycle_position(schedule: Attrs, step: int, total: int) -> tuple[int, float]:
    """(phase, fraction of it done) of step `step` (0-based) of `total`, as OneCycleLR counts.

    The phases end at step pct_start * total - 1, then, with three_phase, at
    2 * pct_start * total - 2, and at total - 1, as PyTorch counts them.
    """
    rise = float(schedule["pct_start"] * total) - 1
    ends = (rise, 2 * rise, total - 1) if schedule["three_phase"] else (rise, total - 1)
    start = 0.0
    for i, end in enumerate(ends):
        if step <= end or i == len(ends) - 1:
            # A phase of zero length (a run of one or two steps) is at its end already;
            # PyTorch divides by zero there.
            return i, (step - start) / (end - start) if end > start else 1.0
        start = end
    raise AssertionError("unreachable: the last phase always answers")


def one_cycle(schedule: Attrs, base: float, step: int, total: int) -> float:
    """OneCycleLR's rate at step `step` (0-based) of `total`, anneal_strategy='cos': rising
    from max_lr / div_factor to max_lr, then (three_phase) back down to max_lr / div_factor,
    and down to max_lr / div_factor / final_div_factor."""
    peak = base if schedule["max_lr"] is None else schedule["max_lr"]
    initial = peak / schedule["div_factor"]
    low = initial / schedule["final_div_factor"]
    if schedule["three_phase"]:
        phases = ((initial, peak), (peak, initial), (initial, low))
    else:
        phases = ((initial, peak), (peak, low))
    i, pct = _one_cycle_position(schedule, step, total)
    return _cos_anneal(*phases[i], pct)


def one_cycle_momentum(schedule: Attrs, step: int, total: int) -> float:
    """OneCycleLR's momentum (cycle_momentum=True) at step `step` of `total`: from max_momentum
    down to base_momentum while the rate rises, back up while it falls (three_phase: then
    held at max_momentum), on the same cosine as the rate."""
    low, high = schedule["base_momentum"], schedule["max_momentum"]
    if schedule["three_phase"]:
        phases = ((high, low), (low, high), (high, high))
    else:
        phases = ((high, low), (low, high))
    i, pct = _one_cycle_position(schedule, step, total)
    return _cos_anneal(*phases[i], pct)


def momentum(schedule: Attrs, epoch: int, batch: int, batches: int, epochs: int
             ) -> float | None:
    """The optimizer's momentum (sgd's momentum, adam's beta_1) for batch `batch` of `batches`
    in epoch `epoch` of `epochs` where the schedule cycles it (one_cycle with cycle_momentum;
    the caller checks that the optimizer has one: train_config.cycles_momentum); else None."""
    if schedule["name"] != "one_cycle" or not schedule["cycle_momentum"]:
        return None
    return one_cycle_momentum(schedule, epoch * batches + batch, epochs * batches)


def describe(schedule: Attrs) -> str:
    """One line for logs and summary.txt, e.g. 'cosine (min_factor=0, warmup_epochs=1)'."""
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in schedule.items() if k != "name")
    return f"{schedule['name']} ({args})" if args else schedule["name"]
