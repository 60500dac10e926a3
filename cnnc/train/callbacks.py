"""Keras' training callbacks, called by the epoch loop (cnnc/train/loop.py) for fit and `cnnc run`.

The names, arguments and decisions are Keras 3's (keras/src/callbacks): EarlyStopping,
ModelCheckpoint, ReduceLROnPlateau, LambdaCallback, and the Callback base class whose hooks a
custom callback overrides. A callback sees the cnnc Model as `self.model`; setting
`self.model.stop_training = True` ends training after the epoch, as in Keras. `epoch` and
`batch` are 0-based, as Keras passes them; `logs` at an epoch's end is that epoch's History
record (loss, accuracy, val_loss, val_accuracy, learning_rate, ...).

Exact resumption: what a callback has counted (best value, epochs waited, the learning rate it
set) is in its `get_state()`, which the loop writes into every checkpoint and gives back with
`set_state()` on resume; EarlyStopping's best weights travel as arrays (`get_arrays`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnc.errors import CnncError, InputError

MODES = ("auto", "min", "max")


@dataclass
class History:
    """What fit returns (Keras' History): per-epoch records (epoch, loss, accuracy, val_loss,
    val_accuracy, learning_rate, times) in `.epochs`, and `.history`, one list per metric."""

    epochs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def history(self) -> dict[str, list[Any]]:
        """Keras' shape: one list per metric."""
        keys: list[str] = []
        for rec in self.epochs:
            keys += [k for k in rec if k not in keys]
        return {k: [rec.get(k) for rec in self.epochs] for k in keys}

    def show_curves(self, title: str = "Training"):
        """Loss, accuracy and learning rate per epoch: a matplotlib Figure (cnnc/viz)."""
        from cnnc.viz.curves import curves_figure

        return curves_figure(self.epochs, title=title)


class Callback:
    """The hooks the training loop calls; override the ones you need (Keras' Callback).

    `self.model` is the model being trained (set before on_train_begin) and `self.params` holds
    {'epochs', 'steps'} (batches per epoch).
    """

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Before the first epoch (also when a run resumes: set_state follows it)."""

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """After the last epoch, or the one after which a callback stopped training."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Before epoch `epoch` (0-based) trains."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """After epoch `epoch` trained and validated; logs is its History record."""

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """After batch `batch` of the epoch; logs: the epoch's running loss (and accuracy).

        Steps are read from the device in groups, so calls come in bursts, in order."""

    # Exact resumption: plain JSON values, and arrays (kept as tensors in the checkpoint).
    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        pass

    def get_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        pass


def _mode(monitor: str, mode: str, who: str) -> str:
    """'min' or 'max' for `monitor`: Keras' 'auto' maximises accuracies and minimises the rest."""
    if not isinstance(monitor, str) or not monitor:
        raise InputError(f"{who}: monitor must be a metric's name such as 'val_loss', got "
                         f"{monitor!r}")
    if mode not in MODES:
        raise InputError(f"{who}: mode must be one of {', '.join(map(repr, MODES))}, got "
                         f"{mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _non_negative(who: str, name: str, value: Any, integer: bool = False) -> Any:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) \
            or value < 0:
        what = "a non-negative integer" if integer else "a non-negative number"
        raise InputError(f"{who}: {name} must be {what}, got {value!r}")
    return int(value) if integer else float(value)


def _monitored(who: str, monitor: str, logs: Mapping[str, Any] | None) -> float | None:
    value = (logs or {}).get(monitor)
    if value is None:
        # Keras warns and carries on; without validation data there is no val_loss.
        warnings.warn(f"{who} monitors '{monitor}', which is not among the epoch's figures "
                      f"({', '.join(k for k in (logs or {}) if isinstance(logs[k], float))}); "
                      "it does nothing this epoch", stacklevel=3)
        return None
    return float(value)


class EarlyStopping(Callback):
    """Stop training when `monitor` has not improved by more than `min_delta` for `patience`
    epochs (Keras' EarlyStopping). baseline: until the value beats it, epochs count as waited.
    restore_best_weights: when training ends, the weights of the best epoch come back."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__()
        who = "EarlyStopping"
        self.monitor = monitor
        self.mode = _mode(monitor, mode, who)
        self.min_delta = _non_negative(who, "min_delta", min_delta)
        self.patience = _non_negative(who, "patience", patience, integer=True)
        self.start_from_epoch = _non_negative(who, "start_from_epoch", start_from_epoch, True)
        self.baseline = None if baseline is None else float(baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def _is_improvement(self, value: float, reference: float) -> bool:
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = _monitored("EarlyStopping", self.monitor, logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring the weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_state(self) -> dict[str, Any]:
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "best": self.best,
                "best_epoch": self.best_epoch}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.wait, self.stopped_epoch = int(state["wait"]), int(state["stopped_epoch"])
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])

    def get_arrays(self) -> dict[str, np.ndarray]:
        return dict(self.best_weights or {})

    def set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.best_weights = dict(arrays) if arrays else None


class ModelCheckpoint(Callback):
    """Write the weights (a .safetensors file, atomically) after every epoch, or with
    save_best_only only when `monitor` improved (Keras' ModelCheckpoint). `filepath` may hold
    Keras' fields: 'w-{epoch:02d}-{val_loss:.3f}.safetensors'."""

    def __init__(self, filepath: str | Path, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, mode: str = "auto",
                 initial_value_threshold: float | None = None):
        super().__init__()
        who = "ModelCheckpoint"
        self.filepath = str(filepath)
        if not self.filepath.endswith(".safetensors"):
            raise InputError(f"{who}: filepath must name a .safetensors file (the weights), "
                             f"got {self.filepath!r}")
        self.monitor = monitor
        self.mode = _mode(monitor, mode, who)
        self.save_best_only = bool(save_best_only)
        self.verbose = verbose
        self.initial = initial_value_threshold
        self.best = self._start()
        self.writes = True  # False on the ranks of a data-parallel run that write no files

    def _start(self) -> float:
        if self.initial is not None:
            return float(self.initial)
        return math.inf if self.mode == "min" else -math.inf

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.best = self._start()

    def _path(self, epoch: int, logs: Mapping[str, Any]) -> str:
        try:
            return self.filepath.format(**{**logs, "epoch": epoch + 1})
        except (KeyError, IndexError, ValueError) as err:
            raise CnncError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r} "
                            f"({type(err).__name__}: {err}); the fields are "
                            f"{', '.join(sorted({*logs, 'epoch'}))}") from None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.save_best_only:
            current = _monitored("ModelCheckpoint", self.monitor, logs)
            if current is None:
                return
            better = current < self.best if self.mode == "min" else current > self.best
            if not better:
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving the weights to {self._path(epoch, logs)}")
            self.best = current
        if not self.writes:
            return
        path = self._path(epoch, logs)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(path)  # cnnc.weights.save_arrays: atomic

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.best = float(state["best"])


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` has not improved by more than
    `min_delta` for `patience` epochs, then wait `cooldown` epochs; never below `min_lr`
    (Keras' ReduceLROnPlateau). With a schedule, the scheduled rate is scaled."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0):
        super().__init__()
        who = "ReduceLROnPlateau"
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) \
                or not 0 < factor < 1:
            raise InputError(f"{who}: factor must be between 0 and 1 (exclusive), got "
                             f"{factor!r}")
        self.monitor = monitor
        self.mode = _mode(monitor, mode, who)
        self.factor = float(factor)
        self.patience = _non_negative(who, "patience", patience, integer=True)
        self.min_delta = _non_negative(who, "min_delta", min_delta)
        self.cooldown = _non_negative(who, "cooldown", cooldown, integer=True)
        self.min_lr = _non_negative(who, "min_lr", min_lr)
        self.verbose = verbose
        self.loop: Any = None  # the Trainer, whose learning_rate_factor this changes
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _better(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = _monitored("ReduceLROnPlateau", self.monitor, logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float((logs or {}).get("learning_rate", 0.0))
                # Keras compares with min_lr in float32, as the optimizer holds its rate.
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    self.loop.learning_rate_factor *= new / old
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing the learning "
                              f"rate to {new:.4g}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.best, self.wait = float(state["best"]), int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])


class LambdaCallback(Callback):
    """A callback from plain functions (Keras' LambdaCallback): on_epoch_begin(epoch, logs),
    on_epoch_end(epoch, logs), on_batch_end(batch, logs), on_train_begin(logs),
    on_train_end(logs)."""

    HOOKS = ("on_epoch_begin", "on_epoch_end", "on_batch_end", "on_train_begin", "on_train_end")

    def __init__(self, on_epoch_begin: Callable | None = None,
                 on_epoch_end: Callable | None = None, on_batch_end: Callable | None = None,
                 on_train_begin: Callable | None = None, on_train_end: Callable | None = None):
        super().__init__()
        given = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_batch_end": on_batch_end, "on_train_begin": on_train_begin,
                 "on_train_end": on_train_end}
        for name, fn in given.items():
            if fn is None:
                continue
            if not callable(fn):
                raise InputError(f"LambdaCallback: {name} must be a function, got {fn!r}")
            setattr(self, name, fn)


class CallbackList:
    """The callbacks of one training run, called in order, with their state for checkpoints."""

    def __init__(self, callbacks: Sequence[Callback] | None, model: Any, loop: Any):
        items = list(callbacks or [])
        for i, c in enumerate(items):
            if not isinstance(c, Callback):
                raise InputError(f"callbacks[{i}] is {c!r}, not a cnnc.Callback",
                                 hint="subclass cnnc.Callback, or use "
                                      "cnnc.LambdaCallback(on_epoch_end=...)")
        self.items = items
        for c in items:
            c.set_model(model)
            if isinstance(c, ReduceLROnPlateau):
                c.loop = loop

    def __bool__(self) -> bool:
        return bool(self.items)

    def call(self, hook: str, *args: Any) -> None:
        for c in self.items:
            getattr(c, hook)(*args)

    def names(self) -> list[str]:
        return [type(c).__name__ for c in self.items]

    def state(self) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
        """Every callback's state (JSON) and arrays, keyed 'callback/<index>/<name>'."""
        arrays = {f"callback/{i}/{k}": v for i, c in enumerate(self.items)
                  for k, v in c.get_arrays().items()}
        return [{"class": type(c).__name__, "state": c.get_state()} for c in self.items], arrays

    def restore(self, saved: list[dict[str, Any]], arrays: Mapping[str, np.ndarray],
                where: str) -> None:
        from cnnc.train.checkpoint import CheckpointError

        if [s.get("class") for s in saved] != self.names():
            raise CheckpointError(
                f"{where}: the checkpoint was written with the callbacks "
                f"[{', '.join(str(s.get('class')) for s in saved)}]; now "
                f"[{', '.join(self.names())}]",
                hint="resume with the callbacks it was written with, in the same order")
        for i, (c, s) in enumerate(zip(self.items, saved, strict=True)):
            c.set_state(s.get("state") or {})
            prefix = f"callback/{i}/"
            c.set_arrays({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})


__all__ = ["Callback", "CallbackList", "EarlyStopping", "History", "LambdaCallback",
           "ModelCheckpoint", "ReduceLROnPlateau"]
