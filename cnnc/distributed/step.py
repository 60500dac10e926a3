"""One data-parallel training step: gradient phase, one all-reduce, update phase, on every rank.

Each rank runs the gradient phase (cnnc/passes/data_parallel.py) on its share of the global
batch, with batch norm's sums exchanged mid-run (cnnc/passes/sync_batchnorm.py). It reads its
gradients back, scales them by its share of the batch, and packs them into one flat buffer
together with the step's small figures (loss, correct predictions, a stop request, a not-finite
flag per rank); one Allreduce sums that buffer over the ranks. Every rank then writes the same
summed gradients into the update phase's gradient tensors and runs the same optimizer update, so
the replicas never drift apart.

The all-reduce goes through the host (read back, reduce, write), which works with every OpenCL
driver. With GPUs the read and the write are where device-to-device transfers (CUDA-aware MPI,
or NCCL-style peer copies) would go; docs/scaling.md says more.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from cnnc.distributed.comm import Comm, DistributedError
from cnnc.distributed.shares import combine_batch_stats, weighted_sum
from cnnc.inputs import check_targets, input_feeds
from cnnc.passes import names
from cnnc.passes.data_parallel import split_phases
from cnnc.passes.sync_batchnorm import BATCH_STATS, ExchangePoint, exchange_points, sync_batchnorm
from cnnc.train.metrics import count_correct

# The small figures after the gradients in the flat buffer: the weighted loss, the count of
# correct predictions, a stop request, then one not-finite flag per rank.
LOSS, CORRECT, STOP, BAD = range(4)


@dataclass(frozen=True)
class StepResult:
    loss: float  # the global batch's loss (nan when a rank's loss was not finite)
    correct: int  # predictions of the global batch that were right
    stop: bool  # some rank asked to stop (Ctrl-C) before this step's all-reduce
    bad_ranks: tuple[int, ...]  # ranks whose own loss was not finite


@dataclass
class StepTimes:
    """Seconds spent communicating, summed over steps (benchmarks and the run's last line)."""

    steps: int = 0
    allreduce_s: float = 0.0  # the gradient all-reduce alone
    exchange_s: float = 0.0  # batch norm's exchanges (reads, gathers and writes)
    host_s: float = 0.0  # packing the gradients read back, writing the sums to the device
    update_s: float = 0.0  # the update phase (the optimizer's kernels)

    def per_step_ms(self) -> dict[str, float]:
        n = max(self.steps, 1)
        return {"allreduce": 1e3 * self.allreduce_s / n, "exchange": 1e3 * self.exchange_s / n,
                "host": 1e3 * self.host_s / n, "update": 1e3 * self.update_s / n}


class DataParallelStep:
    """Runs training steps of `model` as one rank of `comm`."""

    def __init__(self, model, comm: Comm):
        self.model = model
        self.comm = comm
        self.phases = split_phases(sync_batchnorm(model.training_graph()))
        gradient = self.phases.gradient
        self.points = exchange_points(gradient)
        self.prediction = gradient.outputs[1]
        self.target = gradient.node(names.TARGET)
        self.dtype = np.dtype(model.dtype)
        specs = self.phases.grad_state
        model.backend.init_state(specs, {s.name: np.zeros(s.shape, self.dtype) for s in specs})
        self.update = model.backend.compile(self.phases.update, 1)
        self._executables: dict[int, object] = {}
        self.layout: list[tuple[str, tuple[int, ...], int, int]] = []
        offset = 0
        for spec in specs:
            self.layout.append((spec.name, spec.shape, offset, offset + spec.size))
            offset += spec.size
        self.gradient_floats = offset
        self.buffer = np.zeros(offset + BAD + comm.size, self.dtype)
        self.times = StepTimes()

    @property
    def gradient_bytes(self) -> int:
        return self.gradient_floats * self.dtype.itemsize

    def _executable(self, batch: int):
        exe = self._executables.get(batch)
        if exe is None:
            exe = self._executables[batch] = self.model.backend.compile(
                self.phases.gradient, batch)
        return exe

    # ------------------------------------------------------------ the step

    def run(self, x: np.ndarray, y: np.ndarray, labels: np.ndarray, *, first_example: int,
            weight: float, learning_rate: float | None, stop: bool = False,
            momentum: float | None = None) -> StepResult:
        """One step on this rank's examples (x, targets y, class labels), which start at
        `first_example` of the global batch and are `weight` of it (0: a stand-in example for a
        rank that holds none of a short batch; it takes part in every collective only)."""
        model, comm = self.model, self.comm
        feeds = input_feeds(model.spec_graph, x)
        count = len(next(iter(feeds.values())))
        feeds[names.TARGET] = check_targets(
            y, self.target, self.phases.gradient.shape_of(self.prediction), count)
        exchange = {p.value: self._exchanger(p, count, weight) for p in self.points}
        out = self._executable(count).run(
            feeds, [names.LOSS, self.prediction, *self.phases.grads], step=model.step,
            learning_rate=learning_rate, first_example=first_example, exchange=exchange)
        t0 = time.perf_counter()
        buf = self.buffer
        tail = buf[self.gradient_floats:]
        tail[:] = 0
        for name, _, a, b in self.layout:
            if weight:
                np.multiply(out[name].reshape(-1), weight, out=buf[a:b])
            else:
                buf[a:b] = 0  # not weight * values: they may not be finite
        if weight:
            loss = float(out[names.LOSS])
            tail[LOSS] = weight * loss
            tail[CORRECT] = count_correct(out[self.prediction], labels)
            tail[BAD + comm.rank] = 0.0 if math.isfinite(loss) else 1.0
        tail[STOP] = 1.0 if stop else 0.0
        t1 = time.perf_counter()
        comm.allreduce_sum(buf)
        t2 = time.perf_counter()
        bad = tuple(r for r in range(comm.size) if tail[BAD + r] > 0)
        loss = float("nan") if bad else float(tail[LOSS])
        t3 = t2
        if math.isfinite(loss):  # else the loop restores the last checkpoint: skip the update
            model.backend.write_state({name: buf[a:b].reshape(shape)
                                       for name, shape, a, b in self.layout})
            t3 = time.perf_counter()
            self.update.run({}, [], step=model.step, learning_rate=learning_rate,
                            momentum=momentum)
        model.step += 1
        self.times.steps += 1
        self.times.allreduce_s += t2 - t1
        self.times.host_s += (t1 - t0) + (t3 - t2)
        self.times.update_s += time.perf_counter() - t3
        return StepResult(loss, round(float(tail[CORRECT])), bool(tail[STOP] > 0), bad)

    # ------------------------------------------------------------ batch norm's exchanges

    def _exchanger(self, point: ExchangePoint, batch: int, weight: float):
        """The Exchange function of one point for this step: gather every rank's (2, C) value
        with its row count or weight, and combine them in rank order (the same on every rank)."""
        comm = self.comm
        if point.kind == BATCH_STATS:
            share = float(point.rows_per_example * batch) if weight else 0.0
        else:
            share = float(weight)

        def exchange(value: np.ndarray) -> np.ndarray:
            t0 = time.perf_counter()
            row = np.concatenate([[float(point.index), share], value.reshape(-1)])
            rows = comm.allgather(row.astype(np.float64))
            at = rows[:, 0].astype(int)
            if np.any(at != point.index):
                raise DistributedError(
                    f"the ranks are out of step: at '{point.value}' (exchange {point.index}) "
                    f"the ranks are at exchanges {at.tolist()}")
            values = rows[:, 2:].reshape(comm.size, *value.shape)
            if point.kind == BATCH_STATS:
                result = combine_batch_stats(rows[:, 1], values)
            else:
                result = weighted_sum(rows[:, 1], values)
            self.times.exchange_s += time.perf_counter() - t0
            return result.astype(value.dtype)

        return exchange
