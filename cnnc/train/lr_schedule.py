"""Learning-rate schedules: the rate for each training step, from the `train.schedule` settings.

The formulas are the ones documented beside SCHEDULES in cnnc/ir/train_config.py. `epoch` below is
fractional (epoch index + batch / batches per epoch) for the smooth schedules (exponential,
cosine) and whole for the step schedule. The training loop hands the result to
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
    raise ValueError(f"unknown schedule {name!r}")  # config.py rejects these before here


def describe(schedule: Attrs) -> str:
    """One line for logs and summary.txt, e.g. 'cosine (min_factor=0, warmup_epochs=1)'."""
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in schedule.items() if k != "name")
    return f"{schedule['name']} ({args})" if args else schedule["name"]
