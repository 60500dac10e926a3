"""Optimizer options that are not arguments of an update op (Keras' base Optimizer arguments):
gradient clipping (cnnc/ir/clipping.py) and the moving average of the weights (cnnc/ir/ema.py).
The train section takes them in the optimizer mapping beside the learning rate; an
OptimizerConfig holds only those given, and the passes read them from there."""

from __future__ import annotations

from typing import Any

from cnnc.ir.args import Arg
from cnnc.ir.clipping import CLIP_OPTIONS
from cnnc.ir.ema import EMA_OPTIONS

OPTIMIZER_OPTIONS: tuple[Arg, ...] = (*CLIP_OPTIONS, *EMA_OPTIONS)
OPTION_NAMES = frozenset(a.name for a in OPTIMIZER_OPTIONS)


def update_args(args: Any) -> dict[str, Any]:
    """An optimizer's arguments without the options: what its update op takes."""
    return {k: v for k, v in dict(args).items() if k not in OPTION_NAMES}


def given_options(checked: dict[str, Any], given: Any) -> dict[str, Any]:
    """`checked` without the options that were not given (or given as their default), so that
    a config without options equals one that never heard of them."""
    defaults = {a.name: a.default for a in OPTIMIZER_OPTIONS}
    return {k: v for k, v in checked.items()
            if k not in OPTION_NAMES or (k in given and v != defaults[k])}
