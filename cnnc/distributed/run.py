"""`cnnc run` as one rank of a data-parallel run: cnnc/train/session.py's run, made collective.

Setting up runs in stages (`stages`), each either local to the rank or starting with its
collectives, so that a rank that fails in a stage never leaves the others waiting in one: the
launcher (launch.py) agrees after each stage whether any rank failed. Every rank reads the spec,
the data and (on --resume) the run folder itself, and checks that it read what rank 0 read; rank 0 alone creates and writes the run folder, prints, and saves
checkpoints and weights. Rank 0's initial training state is broadcast, so the replicas start
identical; each rank then computes on its own device: the node-local rank k takes the k-th GPU
when there are GPUs, else the CPU device (whose threads are shared between the ranks of the
node), unless --device or CNNC_DEVICE names one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from cnnc import settings
from cnnc.distributed.comm import (
    Comm,
    DistributedError,
    allgather_json,
    bcast_arrays,
    bcast_json,
)
from cnnc.distributed.evaluation import evaluate_sharded
from cnnc.distributed.shares import shares
from cnnc.distributed.trainer import DistributedTrainer
from cnnc.train.fit import config_dict
from cnnc.train.metrics import Evaluation
from cnnc.train.progress import ConsoleReporter, SilentReporter
from cnnc.train.rundir import RunFolder
from cnnc.train.session import RunOptions, _Run


class PeerFolder(RunFolder):
    """Rank 0's run folder as the other ranks hold it: they know its paths, they write nothing."""

    def write_json(self, name: str, data: Any) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> Path:
        return self.path / name

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        pass

    def write_test(self, ev: Evaluation) -> None:
        pass


def rank_device(local_rank: int) -> str | None:
    """The device of the node-local rank: its GPU (round robin) when there are GPUs, else None
    (the default device: the CPU)."""
    from cnnc.backends.opencl.device import devices

    gpus = [d for d in devices() if d.kind == "gpu" and d.usable]
    return gpus[local_rank % len(gpus)].index if gpus else None


class DistributedRun(_Run):
    def __init__(self, opts: RunOptions, out: TextIO, comm: Comm):
        super().__init__(opts, out)
        self.comm = comm
        self.root = comm.rank == 0
        self.folder = None
        self.device_texts: list[str] = []

    def say(self, text: str = "") -> None:
        if self.root:
            super().say(text)

    def stages(self) -> list[Callable[[], object]]:
        """The setup, in order; each stage is local, or its collectives come first."""
        return [self.settings, self.data, self.agree, self.compile, self.share_state,
                self.start_folder, self.share_folder]

    # ------------------------------------------------------------ settings, data, model

    def settings(self) -> None:
        super().settings()
        if self.opts.device is None:
            self.device = None  # chosen per rank in compile(), not the run's recorded one

    def agree(self) -> None:
        """Fail unless this rank read the settings, data and checkpoint that rank 0 read."""
        ck = self.checkpoint
        mine = json.dumps([config_dict(self.config), self.limit, self.backend,
                           self.prepared.sizes(),
                           None if ck is None else [ck.epoch, ck.batch, ck.step]],
                          sort_keys=True, default=str)
        if bcast_json(self.comm, mine) != mine:
            raise DistributedError(
                f"rank {self.comm.rank} read other settings, data or checkpoint than rank 0",
                hint="give every rank the same spec, data and run folder (a shared file system)")

    def compile(self) -> None:
        settings.share_cpu_threads(self.comm.local_size)  # before OpenCL starts
        if self.backend == "opencl" and self.device is None and settings.device_selector() is None:
            self.device = rank_device(self.comm.local_rank)
        super().compile()
        self.model.training_graph()  # the optimizer slots, before the state is broadcast

    def share_state(self) -> None:
        """Rank 0's initial training state on every rank, and every rank's device's name."""
        state = bcast_arrays(self.comm, self.model.get_training_state() if self.root else None)
        self.model.set_training_state(state)
        self.device_texts = allgather_json(self.comm, super().device_text())

    def device_text(self) -> str:
        texts = self.device_texts or [super().device_text()]
        if len(texts) == 1:
            return f"{texts[0]}, one rank"
        if len(set(texts)) == 1:
            return f"{texts[0]} on each of {len(texts)} ranks"
        return "; ".join(f"rank {r}: {t}" for r, t in enumerate(texts))

    # ------------------------------------------------------------ the run

    def start_folder(self) -> None:
        if self.root:
            super().start_folder()
            if self.record.get("ranks") != self.comm.size:
                self.record["ranks"] = self.comm.size  # for the record: resuming takes any N
                self.folder.write_json("run.json", self.record)

    def share_folder(self) -> None:
        path = bcast_json(self.comm, str(self.folder.path) if self.root else None)
        if not self.root:
            self.folder = PeerFolder(path)

    def header(self) -> None:
        super().header()
        b = self.config.batch_size
        parts = sorted({hi - lo for lo, hi in shares(b, self.comm.size)}, reverse=True)
        n = self.comm.size
        self.say(f"ranks     {n} data-parallel rank{'s' if n > 1 else ''}, the global batch of {b} "
                 f"split {' or '.join(map(str, parts))} per rank")

    def train(self) -> None:
        p = self.prepared
        root = self.root
        trainer = DistributedTrainer(
            self.model, self.config, p.train, p.validation, classes=self.classes,
            reporter=ConsoleReporter(self.out, bars=self.opts.bars) if root else SilentReporter(),
            checkpoint_path=self.folder.checkpoint if root else None,
            settings={"train": config_dict(self.config), "limit": self.limit},
            on_epoch_end=self.folder.write_metrics if root else None, comm=self.comm)
        self.trainer = trainer
        start = self.checkpoint
        if start is not None:  # rank 0's copy on every rank
            start.state = bcast_arrays(self.comm, start.state if root else None)
        trainer.run(start)

    def save_weights(self) -> None:
        if self.root:
            super().save_weights()

    def write_report(self) -> None:
        # Rank 0 draws; it has no test outputs of its own (evaluation is sharded), so the
        # report leaves out the most confident mistakes.
        if self.root:
            super().write_report()

    def evaluate_test(self) -> Evaluation:
        p = self.prepared
        return evaluate_sharded(self.model, p.test, self.config.loss, self.comm, p.class_names)

    def finish(self) -> None:
        super().finish()
        if self.trainer is not None:
            step = self.trainer.stepper
            ms = step.times.per_step_ms()
            self.say(f"comm      {step.gradient_bytes / 1e6:.2f} MB of gradients all-reduced per "
                     f"step: {ms['allreduce']:.1f} ms all-reduce (waits for the slowest rank "
                     f"included), {ms['host']:.1f} ms packing and writing, {ms['exchange']:.1f} "
                     f"ms batch-norm exchanges (means over {step.times.steps} steps on rank 0)")
