"""The training loop on one rank of a data-parallel run: cnnc/train/loop.py's, with its steps,
evaluation, checkpoints and stops made collective.

- Steps: each global batch (fixed by the spec, whatever the number of ranks) is split into
  contiguous shares; each rank steps on its share (cnnc/distributed/step.py). Augmentation is
  drawn for the whole epoch from (seed, epoch), and dropout masks are keyed by the example's
  index in the global batch, so every example is treated as on one device.
- Evaluation: sharded, counts summed (evaluation.py).
- Checkpoints: rank 0 alone writes them (the run folder is rank 0's); after a divergence rank 0
  reads the last good one and broadcasts it.
- Stops: a Ctrl-C seen by any rank travels in the step's all-reduce, so every rank stops after
  the same step; a loss that is not finite on any rank is not finite in the sum, so every rank
  diverges at the same step, and the message names the ranks where it happened.
"""

from __future__ import annotations

import numpy as np

from cnnc.data.augment import EpochAugmentation
from cnnc.distributed.comm import Comm, any_rank, bcast_arrays, bcast_json
from cnnc.distributed.evaluation import evaluate_sharded
from cnnc.distributed.shares import shares
from cnnc.distributed.step import DataParallelStep
from cnnc.train.augmentation import EpochPlan
from cnnc.train.checkpoint import load_checkpoint
from cnnc.train.loop import LabelledData, RunningMetrics, Trainer


class DistributedTrainer(Trainer):
    """Trainer for one rank of `comm`; give rank 0 alone a checkpoint path and a reporter."""

    def __init__(self, *args, comm: Comm, **kwargs):
        # Each step's all-reduce reads its figures anyway: the loop reads them after every step,
        # so that a divergence names the ranks of the step where it happened.
        super().__init__(*args, read_every=1, **kwargs)
        self.comm = comm
        self._ready: list[tuple[float, int]] = []  # steps run, not read by the loop yet
        self.stepper = DataParallelStep(self.model, comm)
        self._agreed_stop: bool | None = None  # the last step's, until the loop reads it
        self._bad_ranks: tuple[int, ...] = ()

    prefetches = False  # each rank prepares its share of the batch within its step

    def _train_batch(self, idx: np.ndarray, start: int, aug: EpochAugmentation | None,
                     lr: float) -> tuple[float, int]:
        """One step, run at once (its all-reduce waits for every rank); (loss, right)."""
        comm = self.comm
        lo, hi = shares(len(idx), comm.size)[comm.rank]
        # A rank with no example of a short batch steps on a stand-in (the batch's first
        # example) with weight 0: it still takes part in every collective of the step.
        mine = idx[lo:hi] if hi > lo else idx[:1]
        first = start + lo if hi > lo else start
        x = self.train.x[mine]
        y, labels = self._targets[mine], self.train.labels[mine]
        if isinstance(aug, EpochPlan) and aug.mixes:
            # Mixup and cutmix pair examples across the whole batch: every rank augments and
            # mixes all of it, as one device would, and keeps its share. Right predictions are
            # counted against the larger share of each mixed target (as on one device).
            whole = aug.batch(self.train.x[idx], start, start + len(idx))
            whole, mixed = aug.mix(whole, self._targets[idx], start, start + len(idx))
            part = slice(lo, hi) if hi > lo else slice(0, 1)
            x, y = whole[part], mixed[part]
            labels = np.argmax(y, axis=1)
        elif aug is not None:
            x = aug.batch(x, first, first + len(mine))
        sigint = self._sigint
        result = self.stepper.run(
            x, y, labels, first_example=lo if hi > lo else 0,
            weight=(hi - lo) / len(idx), learning_rate=lr,
            stop=bool(sigint is not None and sigint.requested), momentum=self._momentum_now)
        self._agreed_stop = result.stop
        self._bad_ranks = result.bad_ranks
        return result.loss, result.correct

    def _queue_batch(self, idx: np.ndarray, start: int, aug: EpochAugmentation | None,
                     lr: float) -> None:
        self._ready.append(self._train_batch(idx, start, aug, lr))

    def _read_batches(self) -> list[tuple[float, int]]:
        ready, self._ready = self._ready, []
        return ready

    def _stop_requested(self, stop) -> bool:
        if self._agreed_stop is not None:  # agreed in the step's all-reduce
            agreed, self._agreed_stop = self._agreed_stop, None
            return agreed
        return any_rank(self.comm, stop.requested)

    def _evaluate(self, data: LabelledData):
        return evaluate_sharded(self.model, data, self.config.loss, self.comm,
                                batch_size=self.eval_batch_size, tta=self.config.tta)

    def _save(self, epoch: int, batch: int, running: RunningMetrics) -> None:
        if self.comm.rank == 0:
            super()._save(epoch, batch, running)

    def _restore_last_good(self) -> str:
        comm = self.comm
        path = self.checkpoint_path
        found = bcast_json(comm, path is not None and path.exists() if comm.rank == 0 else None)
        if not found:
            return "no checkpoint was written before it (the model's weights are now invalid)"
        ckpt = load_checkpoint(path) if comm.rank == 0 else None
        state = bcast_arrays(comm, ckpt.state if ckpt is not None else None)
        self.model.set_training_state(state)
        where = bcast_json(comm, [ckpt.position(), ckpt.step, str(path)] if ckpt else None)
        return (f"the last good checkpoint ({where[0]}, step {where[1]}) is kept in {where[2]} "
                "and the model was reset to it")

    def _divergence_note(self) -> str:
        if not self._bad_ranks:
            return ""
        ranks = ", ".join(str(r) for r in self._bad_ranks)
        which = "rank" if len(self._bad_ranks) == 1 else "ranks"
        return f", on {which} {ranks} of {self.comm.size}"
