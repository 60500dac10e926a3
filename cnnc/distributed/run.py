"""`cnnc run` as one rank of a data-parallel run: cnnc/train/session.py's stages, made collective.

A `DistributedRun` composes a `RunSession`: it runs the session's public stages and hands in
what differs (the trainer, the sharded test evaluation, the ranks' devices). Setting up runs in
stages (`stages`), each either local to the rank or starting with its collectives, so that a
rank that fails in a stage never leaves the others waiting in one: the launcher (launch.py)
agrees after each stage whether any rank failed. Every rank reads the spec, the data and (on
--resume) the run folder itself, and checks that it read what rank 0 read; rank 0 alone creates
and writes the run folder, prints, and saves checkpoints and weights. Rank 0's initial training
state is broadcast, so the replicas start identical; each rank then computes on its own device:
the node-local rank k takes the k-th GPU when there are GPUs, else the CPU device (whose threads
are shared between the ranks of the node), unless --device or CNNC_DEVICE names one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TextIO

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
from cnnc.errors import CnncError
from cnnc.train.fit import config_dict
from cnnc.train.progress import ConsoleReporter, SilentReporter
from cnnc.train.rundir import RunFolder
from cnnc.train.session import RunOptions, RunSession


def rank_device(local_rank: int) -> str | None:
    """The device of the node-local rank: its GPU (round robin) when there are GPUs, else None
    (the default device: the CPU)."""
    from cnnc.backends.opencl.device import devices

    gpus = [d for d in devices() if d.kind == "gpu" and d.usable]
    return gpus[local_rank % len(gpus)].index if gpus else None


def ranks_device_text(texts: list[str]) -> str:
    """Every rank's device, in one phrase for the header and the summary."""
    if len(texts) == 1:
        return f"{texts[0]}, one rank"
    if len(set(texts)) == 1:
        return f"{texts[0]} on each of {len(texts)} ranks"
    return "; ".join(f"rank {r}: {t}" for r, t in enumerate(texts))


class DistributedRun:
    """One rank's `cnnc run`: the session's stages, with this rank's collectives between them.

    Rank 0's session leads (prints and writes); every other rank's computes only."""

    def __init__(self, opts: RunOptions, out: TextIO, comm: Comm):
        self.comm = comm
        self.root = comm.rank == 0
        self.session = RunSession(opts, out, lead=self.root)

    def stages(self) -> list[Callable[[], object]]:
        """The setup, in order; each stage is local, or its collectives come first."""
        return [self.settings, self.data, self.agree, self.compile, self.share_state,
                self.start_folder, self.share_folder]

    # ------------------------------------------------------------ settings, data, model

    def settings(self) -> None:
        run = self.session
        run.settings()
        if run.config.reconstruction:
            # Its sharded step and evaluation count classes; an autoencoder has none.
            raise CnncError("train target input (an autoencoder) does not train data-parallel "
                            "yet", hint="run it in one process (without --distributed)")
        if run.opts.device is None:
            run.device = None  # chosen per rank in compile(), not the run's recorded one

    def data(self) -> None:
        self.session.data()

    def agree(self) -> None:
        """Fail unless this rank read the settings, data and checkpoint that rank 0 read."""
        run = self.session
        ck = run.checkpoint
        mine = json.dumps([config_dict(run.config), run.limit, run.backend,
                           run.prepared.sizes(),
                           None if ck is None else [ck.epoch, ck.batch, ck.step]],
                          sort_keys=True, default=str)
        if bcast_json(self.comm, mine) != mine:
            raise DistributedError(
                f"rank {self.comm.rank} read other settings, data or checkpoint than rank 0",
                hint="give every rank the same spec, data and run folder (a shared file system)")

    def compile(self) -> None:
        run = self.session
        settings.share_cpu_threads(self.comm.local_size)  # before OpenCL starts
        if run.backend == "opencl" and run.device is None and settings.device_selector() is None:
            run.device = rank_device(self.comm.local_rank)
        run.compile()
        run.model.training_graph()  # the optimizer slots, before the state is broadcast

    def share_state(self) -> None:
        """Rank 0's initial training state on every rank, and every rank's device's name."""
        run = self.session
        state = bcast_arrays(self.comm, run.model.get_training_state() if self.root else None)
        run.model.set_training_state(state)
        run.device_summary = ranks_device_text(allgather_json(self.comm,
                                                              run.local_device_text()))

    # ------------------------------------------------------------ the run

    def start_folder(self) -> None:
        run = self.session
        if self.root:
            run.start_folder()
            if run.record.get("ranks") != self.comm.size:
                run.record["ranks"] = self.comm.size  # for the record: resuming takes any N
                run.folder.write_json("run.json", run.record)

    def share_folder(self) -> None:
        run = self.session
        path = bcast_json(self.comm, str(run.folder.path) if self.root else None)
        if not self.root:
            run.folder = RunFolder(path)  # rank 0's: this rank knows its paths, writes nothing

    def header(self) -> None:
        run = self.session
        run.header()
        b = run.config.batch_size
        parts = sorted({hi - lo for lo, hi in shares(b, self.comm.size)}, reverse=True)
        n = self.comm.size
        run.say(f"ranks     {n} data-parallel rank{'s' if n > 1 else ''}, the global batch of {b} "
                f"split {' or '.join(map(str, parts))} per rank")

    def train(self) -> None:
        run = self.session
        p = run.prepared
        root = self.root
        trainer = DistributedTrainer(
            run.model, run.config, p.train, p.validation, classes=run.classes,
            reporter=ConsoleReporter(run.out, bars=run.opts.bars) if root else SilentReporter(),
            checkpoint_path=run.folder.checkpoint if root else None,
            settings=run.trainer_settings(),
            on_epoch_end=run.folder.write_metrics if root else None, comm=self.comm)
        start = run.checkpoint
        if start is not None:  # rank 0's copy on every rank
            start.state = bcast_arrays(self.comm, start.state if root else None)
        run.train(trainer)

    def finish(self) -> None:
        # Rank 0 draws the report; it has no test outputs of its own (evaluation is sharded),
        # so the report leaves out the most confident mistakes.
        run = self.session
        run.save_weights()
        p = run.prepared
        run.evaluate(evaluate_sharded(run.model, p.test, run.config.loss, self.comm,
                                      p.class_names, tta=run.config.tta))
        run.write_results()
        if run.trainer is not None:
            step = run.trainer.stepper
            ms = step.times.per_step_ms()
            run.say(f"comm      {step.gradient_bytes / 1e6:.2f} MB of gradients all-reduced per "
                    f"step: {ms['allreduce']:.1f} ms all-reduce (waits for the slowest rank "
                    f"included), {ms['host']:.1f} ms packing and writing, {ms['exchange']:.1f} "
                    f"ms batch-norm exchanges (means over {step.times.steps} steps on rank 0)")

    def write_summary(self, status: str) -> None:
        self.session.write_summary(status)
