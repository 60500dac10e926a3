"""The epoch loop behind Model.fit and `cnnc run`: batches, schedule, metrics, checkpoints, stops.

Everything random is a pure function of the seed and the position (epoch order and augmentation
from (seed, epoch), dropout masks from the model's step), so a run can stop anywhere between two
steps and continue from its checkpoint to the same weights it would have reached uninterrupted.

Data-parallel training (cnnc/distributed/trainer.py) runs this same loop: it overrides the
methods marked as such below (one step, evaluation, saving, stopping), not the loop.

Steps are queued, not waited for (Model.queue_train_step): their losses and counts of right
predictions stay where they were computed, and the loop reads them every `read_every` steps,
after READ_EVERY_S seconds, at the epoch's end and before a checkpoint. It adds them up in step
order exactly as it would after every step, so the figures do not depend on when it reads.

Two ways a run stops early:
- Ctrl-C (SIGINT) sets a flag that the loop reads between steps: the step in flight finishes,
  a checkpoint is written, and TrainingInterrupted is raised. A second Ctrl-C interrupts at once.
- A loss that is NaN or infinite raises TrainingDiverged naming the step (found at the next
  read, a few steps later at most); the checkpoint on disk is left as it was (the last good one)
  and the model is put back to it.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, final

import numpy as np

from cnnc.data.augment import EVAL_NOISE_EPOCH, EpochAugmentation, noisy
from cnnc.data.split import batch_bounds, epoch_order
from cnnc.errors import InternalError, TrainingDiverged
from cnnc.ir.train_config import TrainConfig, cycles_momentum
from cnnc.train.augmentation import EpochPlan, epoch_plan
from cnnc.train.callbacks import CallbackList, History
from cnnc.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from cnnc.train.lr_schedule import learning_rate, momentum
from cnnc.train.metrics import (
    RunningMetrics,
    evaluation_from_predictions,
    reconstruction_from_predictions,
    targets_for,
)
from cnnc.train.prefetch import DEFAULT_DEPTH, Prefetcher
from cnnc.train.progress import Reporter, SilentReporter
from cnnc.train.tta import predict_averaged

EVAL_BATCH_SIZE = 256  # inference only: bigger batches run faster and change no result
# Steps queued before the loop reads their figures: rarely enough that the device never waits
# for the host, often enough that the progress bar moves and a diverged loss is found soon.
READ_EVERY = 50
READ_EVERY_S = 1.0  # ... or this long after the last read, whichever comes first


@dataclass(frozen=True)
class _Queued:
    """A step queued and not read yet: what the loop needs to account for it."""

    step: int  # the model's step counter before it
    batch: int
    count: int  # examples
    learning_rate: float


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
class LabelledData:
    """Model inputs (N, H, W, C) float32 and class-index labels (N,)."""

    x: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def part(self, rows: slice) -> LabelledData:
        return LabelledData(self.x[rows], self.labels[rows])


def evaluate_arrays(model, data: LabelledData, loss: str, class_names: tuple[str, ...] = (),
                    batch_size: int = EVAL_BATCH_SIZE, target: str = "labels",
                    noise: float = 0.0, seed: int = 0, tta: str = "none"):
    """Loss, accuracy and confusion matrix of `model` (inference graph) on `data`; with
    target "input" (an autoencoder), the reconstruction error of its images instead, from
    inputs with Gaussian noise of std `noise` (a denoising autoencoder's; drawn from `seed`).
    tta: the outputs averaged over these views of each image (cnnc/train/tta.py)."""
    if target == "input":
        pred = model.predict(reconstruction_inputs(data.x, noise, seed), batch_size=batch_size)
        return reconstruction_from_predictions(np.asarray(pred), data.x)
    pred = predict_averaged(model, data.x, tta, batch_size)
    return evaluation_from_predictions(loss, pred, data.labels, class_names, tta)


def reconstruction_inputs(x: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """What an autoencoder is evaluated on: x itself, or x with its fixed evaluation noise."""
    return noisy(x, noise, seed, EVAL_NOISE_EPOCH)


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
        read_every: int = READ_EVERY,
        read_every_s: float = READ_EVERY_S,
        callbacks: list[Any] | None = None,
    ):
        """read_every: steps queued at most between two reads of their losses (1: after
        every step); read_every_s: seconds at most between two reads (math.inf: no limit);
        callbacks: Keras-style cnnc.Callback objects (cnnc/train/callbacks.py)."""
        if isinstance(read_every, bool) or not isinstance(read_every, int) or read_every < 1:
            raise InternalError(f"read_every must be a positive integer, got {read_every!r}")
        self.read_every, self.read_every_s = read_every, read_every_s
        self.model = model
        self.config = config
        self.train = train
        self.validation = validation if validation is not None and len(validation) else None
        self.classes = classes
        # Mixup and cutmix mix targets: rows of class weights even for a sparse loss, which the
        # model's training graph must take (it is built from the model's own train section).
        model_config = getattr(model, "train_config", config)
        if config.soft_targets != model_config.soft_targets:
            raise InternalError("the training settings mix targets (mixup, cutmix) but the "
                                "model's do not, or the other way round: compile the model "
                                "with the settings it is trained with")
        # What train_step takes as y, for every example at once rather than batch by batch;
        # an autoencoder's target is its (augmented) input batch itself.
        self._targets = (None if config.reconstruction
                         else targets_for("categorical_crossentropy" if config.soft_targets
                                          else config.loss, train.labels, classes))
        self.reporter = reporter or SilentReporter()
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.settings = settings or {}
        self.on_epoch_end = on_epoch_end
        self.eval_batch_size = eval_batch_size
        self.history = History()
        self.elapsed_s = 0.0
        self._last_good: int | None = None  # epoch count of the checkpoint on disk
        self._sigint: _SigintFlag | None = None  # while run() runs
        self._epoch_now = 0  # the epoch being trained (a denoising autoencoder's noise)
        # one_cycle's momentum for the step being queued (None: the optimizer's own)
        self._momentum_now: float | None = None
        self._cycles_momentum = cycles_momentum(config)
        self._prefetcher: Prefetcher | None = None  # the epoch's, while it runs
        # ReduceLROnPlateau's scale of the scheduled rate; a checkpoint keeps it.
        self.learning_rate_factor = 1.0
        self.callbacks = CallbackList(callbacks, model, self)
        for c in self.callbacks.items:
            c.set_params({"epochs": config.epochs,
                          "steps": len(batch_bounds(len(train), config.batch_size))})

    # ------------------------------------------------------------ checkpoints

    def _save(self, epoch: int, batch: int, running: RunningMetrics) -> None:
        if self.checkpoint_path is None:
            return
        saved, arrays = self.callbacks.state()
        save_checkpoint(self.checkpoint_path, Checkpoint(
            state=self.model.get_training_state(), epoch=epoch, batch=batch,
            partial=running.state() if batch else {}, history=self.history.epochs,
            settings=self.settings, elapsed_s=self.elapsed_s,
            callbacks={"learning_rate_factor": self.learning_rate_factor, "items": saved},
            callback_arrays=arrays,
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

    # Whether this loop's steps take their data from a prefetch queue (data parallelism
    # prepares each rank's share in its own step, and sets this False).
    prefetches = True

    def _batch_data(self, idx: np.ndarray, start: int,
                    aug: EpochPlan | EpochAugmentation | None, epoch: int
                    ) -> tuple[np.ndarray, np.ndarray]:
        """The inputs and targets of the step on the examples `idx` at positions start.. of
        epoch `epoch`'s order: read, augmented, mixed. A pure function of its arguments (the
        prefetch thread runs it ahead of the step; cnnc/train/prefetch.py)."""
        xb = self.train.x[idx]
        if aug is not None:
            xb = aug.batch(xb, start, start + len(idx))
        yb = xb if self._targets is None else self._targets[idx]
        if isinstance(aug, EpochPlan) and aug.mixes:
            xb, yb = aug.mix(xb, yb, start, start + len(idx))
        if self.config.noise:  # a denoising autoencoder: noisy input, clean target
            xb = noisy(xb, self.config.noise, self.config.seed, epoch, start)
        return xb, yb

    def _queue_batch(self, idx: np.ndarray, start: int,
                     aug: EpochPlan | EpochAugmentation | None, lr: float) -> None:
        """Queue one optimizer step on the examples `idx`, at positions start.. of the epoch's
        order (its figures: `_read_batches`); `aug` augments it (cnnc/train/augmentation.py)."""
        if self._prefetcher is not None:
            xb, yb = self._prefetcher.get(start)
        else:
            xb, yb = self._batch_data(idx, start, aug, self._epoch_now)
        self.model.queue_train_step(xb, yb, learning_rate=lr, momentum=self._momentum_now)

    def _close_prefetcher(self) -> None:
        if self._prefetcher is not None:
            prefetcher, self._prefetcher = self._prefetcher, None
            prefetcher.close(strict=False)

    def _read_batches(self) -> list[tuple[float, int]]:
        """(loss, right predictions) of each step queued since the last read, in order."""
        return [(f.loss, f.correct) for f in self.model.read_queued_steps()]

    def _evaluate(self, data: LabelledData):
        from cnnc.train.ema import averaged_weights

        with averaged_weights(self.model):  # use_ema: validation sees the averaged weights
            return evaluate_arrays(self.model, data, self.config.loss,
                                   batch_size=self.eval_batch_size, target=self.config.target,
                                   noise=self.config.noise, seed=self.config.seed,
                                   tta=self.config.tta)

    def _stop_requested(self, stop: _SigintFlag) -> bool:
        return stop.requested

    def _divergence_note(self) -> str:
        """Added to the divergence message (data parallelism names the ranks)."""
        return ""

    # ------------------------------------------------------------ the loop

    def _take(self, queued: list[_Queued], running: RunningMetrics, epoch: int, batches: int,
              t0: float, seen: int) -> int:
        """Read the queued steps' figures and add them up in order, as if each had been read
        after its step; stop at a loss that is not finite. Returns the examples seen."""
        figures = self._read_batches()
        if len(figures) != len(queued):
            raise InternalError(f"{len(queued)} training steps were queued but {len(figures)} "
                                "were read back")
        elapsed = time.perf_counter() - t0
        for q, (loss, correct) in zip(queued, figures, strict=True):
            if not math.isfinite(loss):
                kept = self._restore_last_good()
                found = (f"; found when reading steps {queued[0].step + 1} to "
                         f"{queued[-1].step + 1}" if len(queued) > 1 else "")
                raise TrainingDiverged(
                    f"the training loss became {loss} at step {q.step + 1} (epoch {epoch + 1}, "
                    f"batch {q.batch + 1} of {batches}, learning rate {q.learning_rate:g}"
                    f"{self._divergence_note()}{found}); training stopped and {kept}",
                    hint="lower the learning rate (--lr) or add batch normalisation")
            running.add_counts(loss, correct, q.count)
            seen += q.count
            # A reconstruction has no accuracy (its count of "right" arg-max pixels is noise).
            accuracy = math.nan if self.config.reconstruction else running.accuracy
            self.reporter.batch_end(q.batch, running.loss, accuracy,
                                    seen / elapsed if elapsed > 0 else 0.0)
            if self.callbacks:
                logs = {"loss": running.loss}
                if not self.config.reconstruction:
                    logs["accuracy"] = accuracy
                self.callbacks.call("on_batch_end", q.batch, logs)
        return seen

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
        self.model.stop_training = False  # Keras' flag, which a callback sets to stop
        self.callbacks.call("on_train_begin", {})
        if start is not None and (start.callbacks or self.callbacks):
            saved = start.callbacks or {}
            self.learning_rate_factor = float(saved.get("learning_rate_factor", 1.0))
            self.callbacks.restore(list(saved.get("items") or []), start.callback_arrays,
                                   str(self.checkpoint_path or "the checkpoint"))
        with _SigintFlag() as stop:
            self._sigint = stop
            for epoch in range(epoch0, cfg.epochs):
                self.callbacks.call("on_epoch_begin", epoch, {})
                try:
                    self._epoch(epoch, batch0 if epoch == epoch0 else 0,
                                running if epoch == epoch0 else RunningMetrics(), stop)
                finally:  # Ctrl-C or an error: the prefetch thread stops before run returns
                    self._close_prefetcher()
                if self.model.stop_training:
                    break
        from cnnc.train.ema import use_averaged_weights

        # use_ema: the averaged weights from here on (the checkpoint keeps the raw ones)
        use_averaged_weights(self.model)
        self.callbacks.call("on_train_end",
                            dict(self.history.epochs[-1]) if self.history.epochs else {})
        return self.history

    def _epoch(self, epoch: int, first_batch: int, running: RunningMetrics, stop) -> None:
        cfg = self.config
        n = len(self.train)
        bounds = batch_bounds(n, cfg.batch_size)
        order = epoch_order(n, cfg.seed, epoch, cfg.shuffle)
        aug = epoch_plan(cfg, n, self.train.x.shape[1:], epoch)
        base_lr = cfg.optimizer.learning_rate
        self._epoch_now = epoch
        self.reporter.epoch_start(epoch, cfg.epochs, len(bounds), first_batch)
        t0 = last_read = time.perf_counter()
        seen = 0
        lr = base_lr
        queued: list[_Queued] = []
        depth = DEFAULT_DEPTH if cfg.prefetch is None else cfg.prefetch
        if self.prefetches and depth and first_batch < len(bounds):
            # The batches [first_batch, end) of this epoch, by their first position, `depth`
            # ahead of the steps.
            ends = {bounds[b][0]: bounds[b][1] for b in range(first_batch, len(bounds))}
            self._prefetcher = Prefetcher(
                lambda s: self._batch_data(order[s:ends[s]], s, aug, epoch), list(ends), depth)
        for b in range(first_batch, len(bounds)):
            start, stop_ = bounds[b]
            lr = self.learning_rate_factor * learning_rate(cfg.schedule, base_lr, epoch, b,
                                                           len(bounds), cfg.epochs)
            if self._cycles_momentum:
                self._momentum_now = momentum(cfg.schedule, epoch, b, len(bounds), cfg.epochs)
            queued.append(_Queued(self.model.step, b, stop_ - start, lr))
            self._queue_batch(order[start:stop_], start, aug, lr)
            stopping = self._stop_requested(stop)
            if (stopping or b + 1 == len(bounds) or len(queued) >= self.read_every
                    or time.perf_counter() - last_read >= self.read_every_s):
                seen = self._take(queued, running, epoch, len(bounds), t0, seen)
                queued = []
                last_read = time.perf_counter()
            if stopping:
                self.elapsed_s += time.perf_counter() - t0
                self._save(epoch, b + 1, running)
                self.reporter.close()
                raise TrainingInterrupted(epoch, b + 1, self.model.step, self.checkpoint_path)
        self._close_prefetcher()
        train_s = time.perf_counter() - t0
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": running.loss}
        if not cfg.reconstruction:
            record["accuracy"] = running.accuracy
        if self.validation is not None:
            ev = self._evaluate(self.validation)
            record["val_loss"] = ev.loss
            if not cfg.reconstruction:
                record["val_accuracy"] = ev.accuracy
        total_s = time.perf_counter() - t0
        self.elapsed_s += total_s
        record.update({
            "learning_rate": lr, "step": self.model.step, "train_time_s": train_s,
            "time_s": total_s, "examples_per_s": seen / train_s if train_s > 0 else 0.0,
        })
        self.history.epochs.append(record)
        # Before the checkpoint, so that it holds what the callbacks counted for this epoch.
        self.callbacks.call("on_epoch_end", epoch, dict(record))
        self._save(epoch + 1, 0, RunningMetrics())
        if self.on_epoch_end is not None:
            self.on_epoch_end(self.history.epochs)
        self.reporter.epoch_end(record)
        if self._stop_requested(stop):
            # Ctrl-C during validation: the end-of-epoch checkpoint above already holds it all.
            raise TrainingInterrupted(epoch + 1, 0, self.model.step, self.checkpoint_path)
