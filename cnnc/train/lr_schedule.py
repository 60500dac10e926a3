"""Learning-rate schedules: the rate for each training step, from the `train.schedule` settings.

The formulas are the ones documented beside SCHEDULES in cnnc/ir/train_config.py. `epoch` below is
fractional (epoch index + batch / batches per epoch) for the smooth schedules (exponential,
cosine) and whole for the step schedule; one_cycle counts steps (epoch * batches + batch) over
epochs * batches in all, as torch.optim.lr_scheduler.OneCycleLR stepped once per batch. The training loop hands the result to
Model.train_step(learning_rate=...), so both backends see the same number.
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


def one_cycle(schedule: Attrs, base: float, step: int, total: int) -> float:
    """OneCycleLR's rate at step `step` (0-based) of `total`, anneal_strategy='cos'.

    The phases end at step pct_start * total - 1 (rising from max_lr / div_factor to max_lr),
    then, with three_phase, at 2 * pct_start * total - 2 (back down to max_lr / div_factor),
    and at total - 1 (down to max_lr / div_factor / final_div_factor), as PyTorch counts them.
    """
    peak = base if schedule["max_lr"] is None else schedule["max_lr"]
    initial = peak / schedule["div_factor"]
    low = initial / schedule["final_div_factor"]
    rise = float(schedule["pct_start"] * total) - 1
    if schedule["three_phase"]:
        phases = ((rise, initial, peak), (2 * rise, peak, initial), (total - 1, initial, low))
    else:
        phases = ((rise, initial, peak), (total - 1, peak, low))
    start = 0.0
    for i, (end, lr_from, lr_to) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            # A phase of zero length (a run of one or two steps) is at its end already;
            # PyTorch divides by zero there.
            pct = (step - start) / (end - start) if end > start else 1.0
            return _cos_anneal(lr_from, lr_to, pct)
        start = end
    raise AssertionError("unreachable: the last phase always answers")


def describe(schedule: Attrs) -> str:
    """One line for logs and summary.txt, e.g. 'cosine (min_factor=0, warmup_epochs=1)'."""
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in schedule.items() if k != "name")
    return f"{schedule['name']} ({args})" if args else schedule["name"]
