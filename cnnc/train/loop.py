"""The epoch loop behind Model.fit and `cnnc run`: batches, schedule, metrics, checkpoints, stops.

Everything random is a pure function of the seed and the position (epoch order and augmentation
from (seed, epoch), dropout masks from the model's step), so a run can stop anywhere between two
steps and continue from its checkpoint to the same weights it would have reached uninterrupted.

Data-parallel training (cnnc/distributed/trainer.py) runs this same loop: it overrides the
methods marked as such below (one step, evaluation, saving, stopping), not the loop.

Two ways a run stops early:
- Ctrl-C (SIGINT) sets a flag that the loop reads between steps: the step in flight finishes,
  a checkpoint is written, and TrainingInterrupted is raised. A second Ctrl-C interrupts at once.
- A loss that is NaN or infinite raises TrainingDiverged naming the step; the checkpoint on disk
  is left as it was (the last good one) and the model is put back to it.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

import numpy as np

from cnnc.data.augment import EpochAugmentation, epoch_augmentation
from cnnc.data.split import batch_bounds, epoch_order
from cnnc.errors import TrainingDiverged
from cnnc.ir.train_config import TrainConfig
from cnnc.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from cnnc.train.lr_schedule import learning_rate
from cnnc.train.metrics import (
    RunningMetrics,
    count_correct,
    evaluation_from_predictions,
    targets_for,
)
from cnnc.train.progress import Reporter, SilentReporter

EVAL_BATCH_SIZE = 256  # inference only: bigger batches run faster and change no result


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the checkpoint was saved (`checkpoint` is None without one)."""

    def __init__(self, epoch: int, batch: int, step: int, checkpoint: Path | None):
        super().__init__(f"interrupted at epoch {epoch + 1}, batch {batch}, step {step}")
        self.epoch, self.batch, self.step, self.checkpoint = epoch, batch, step, checkpoint


@final
class _SigintFlag:
    """While active, the first SIGINT only sets `requested`; the second raises as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _SigintFlag:
        # Signal handlers can only be set from the main thread; elsewhere Ctrl-C is not ours.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


@dataclass
class History:
    """Per-epoch records: epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, times."""

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


@dataclass
class LabelledData:
    """Model inputs (N, H, W, C) float32 and class-index labels (N,)."""

    x: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def part(self, rows: slice) -> LabelledData:
        return LabelledData(self.x[rows], self.labels[rows])


def evaluate_arrays(model, data: LabelledData, loss: str, class_names: tuple[str, ...] = (),
                    batch_size: int = EVAL_BATCH_SIZE):
    """Loss, accuracy and confusion matrix of `model` (inference graph) on `data`."""
    pred = model.predict(data.x, batch_size=batch_size)
    return evaluation_from_predictions(loss, np.asarray(pred), data.labels, class_names)


class Trainer:
    """Runs epochs [start, config.epochs) of `config` on `train`, validating on `validation`."""

    def __init__(
        self,
        model,
        config: TrainConfig,
        train: LabelledData,
        validation: LabelledData | None = None,
        *,
        classes: int,
        reporter: Reporter | None = None,
        checkpoint_path: str | Path | None = None,
        settings: dict[str, Any] | None = None,
        on_epoch_end: Callable[[list[dict[str, Any]]], None] | None = None,
        eval_batch_size: int = EVAL_BATCH_SIZE,
    ):
        self.model = model
        self.config = config
        self.train = train
        self.validation = validation if validation is not None and len(validation) else None
        self.classes = classes
        # What train_step takes as y, for every example at once rather than batch by batch.
        self._targets = targets_for(config.loss, train.labels, classes)
        self.reporter = reporter or SilentReporter()
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.settings = settings or {}
        self.on_epoch_end = on_epoch_end
        self.eval_batch_size = eval_batch_size
        self.history = History()
        self.elapsed_s = 0.0
        self._last_good: int | None = None  # epoch count of the checkpoint on disk
        self._sigint: _SigintFlag | None = None  # while run() runs

    # ------------------------------------------------------------ checkpoints

    def _save(self, epoch: int, batch: int, running: RunningMetrics) -> None:
        if self.checkpoint_path is None:
            return
        save_checkpoint(self.checkpoint_path, Checkpoint(
            state=self.model.get_training_state(), epoch=epoch, batch=batch,
            partial=running.state() if batch else {}, history=self.history.epochs,
            settings=self.settings, elapsed_s=self.elapsed_s,
        ))

    def _restore_last_good(self) -> str:
        """Put the model back to the checkpoint on disk; says which one, for the message."""
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            return "no checkpoint was written before it (the model's weights are now invalid)"
        ckpt = load_checkpoint(self.checkpoint_path)
        self.model.set_training_state(ckpt.state)
        return (f"the last good checkpoint ({ckpt.position()}, step {ckpt.step}) is kept in "
                f"{self.checkpoint_path} and the model was reset to it")

    # ------------------------------------------------------------ what data parallelism overrides

    def _train_batch(self, idx: np.ndarray, start: int, aug: EpochAugmentation | None,
                     lr: float) -> tuple[float, int]:
        """One optimizer step on the examples `idx`, at positions start.. of the epoch's order;
        returns the batch's loss and how many of its predictions were right."""
        xb = self.train.x[idx]
        if aug is not None:
            xb = aug.batch(xb, start, start + len(idx))
        loss, pred = self.model.train_step(xb, self._targets[idx], learning_rate=lr,
                                           return_predictions=True)
        return float(loss), count_correct(np.asarray(pred), self.train.labels[idx])

    def _evaluate(self, data: LabelledData):
        return evaluate_arrays(self.model, data, self.config.loss,
                               batch_size=self.eval_batch_size)

    def _stop_requested(self, stop: _SigintFlag) -> bool:
        return stop.requested

    def _divergence_note(self) -> str:
        """Added to the divergence message (data parallelism names the ranks)."""
        return ""

    # ------------------------------------------------------------ the loop

    def run(self, start: Checkpoint | None = None) -> History:
        cfg = self.config
        epoch0, batch0 = 0, 0
        running = RunningMetrics()
        if start is not None:
            self.model.set_training_state(start.state)
            self.history.epochs = list(start.history)
            self.elapsed_s = start.elapsed_s
            epoch0, batch0 = start.epoch, start.batch
            if batch0:
                running = RunningMetrics.from_state(start.partial)
        with _SigintFlag() as stop:
            self._sigint = stop
            for epoch in range(epoch0, cfg.epochs):
                self._epoch(epoch, batch0 if epoch == epoch0 else 0,
                            running if epoch == epoch0 else RunningMetrics(), stop)
        return self.history

    def _epoch(self, epoch: int, first_batch: int, running: RunningMetrics, stop) -> None:
        cfg = self.config
        n = len(self.train)
        bounds = batch_bounds(n, cfg.batch_size)
        order = epoch_order(n, cfg.seed, epoch, cfg.shuffle)
        aug_cfg = cfg.augment
        aug = (epoch_augmentation(n, cfg.seed, epoch, aug_cfg["shift"], aug_cfg["flip"])
               if aug_cfg["shift"] or aug_cfg["flip"] else None)
        base_lr = cfg.optimizer.learning_rate
        self.reporter.epoch_start(epoch, cfg.epochs, len(bounds), first_batch)
        t0 = time.perf_counter()
        seen = 0
        lr = base_lr
        for b in range(first_batch, len(bounds)):
            start, stop_ = bounds[b]
            lr = learning_rate(cfg.schedule, base_lr, epoch, b, len(bounds), cfg.epochs)
            step = self.model.step
            try:
                loss, correct = self._train_batch(order[start:stop_], start, aug, lr)
            except TrainingDiverged as err:  # said with the epoch and checkpoint below
                loss, correct = getattr(err, "loss", math.nan), 0
            if not math.isfinite(loss):
                kept = self._restore_last_good()
                raise TrainingDiverged(
                    f"the training loss became {loss} at step {step + 1} (epoch {epoch + 1}, "
                    f"batch {b + 1} of {len(bounds)}, learning rate {lr:g}"
                    f"{self._divergence_note()}); training stopped and {kept}",
                    hint="lower the learning rate (--lr) or add batch normalisation")
            running.add_counts(loss, correct, stop_ - start)
            seen += stop_ - start
            elapsed = time.perf_counter() - t0
            self.reporter.batch_end(b, running.loss, running.accuracy,
                                    seen / elapsed if elapsed > 0 else 0.0)
            if self._stop_requested(stop):
                self.elapsed_s += elapsed
                self._save(epoch, b + 1, running)
                self.reporter.close()
                raise TrainingInterrupted(epoch, b + 1, self.model.step, self.checkpoint_path)
        train_s = time.perf_counter() - t0
        record: dict[str, Any] = {
            "epoch": epoch + 1, "loss": running.loss, "accuracy": running.accuracy,
        }
        if self.validation is not None:
            ev = self._evaluate(self.validation)
            record["val_loss"], record["val_accuracy"] = ev.loss, ev.accuracy
        total_s = time.perf_counter() - t0
        self.elapsed_s += total_s
        record.update({
            "learning_rate": lr, "step": self.model.step, "train_time_s": train_s,
            "time_s": total_s, "examples_per_s": seen / train_s if train_s > 0 else 0.0,
        })
        self.history.epochs.append(record)
        self._save(epoch + 1, 0, RunningMetrics())
        if self.on_epoch_end is not None:
            self.on_epoch_end(self.history.epochs)
        self.reporter.epoch_end(record)
        if self._stop_requested(stop):
            # Ctrl-C during validation: the end-of-epoch checkpoint above already holds it all.
            raise TrainingInterrupted(epoch + 1, 0, self.model.step, self.checkpoint_path)
