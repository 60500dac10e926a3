"""Whether `cnnc run` trains data-parallel, and how its ranks start, fail and stop together.

Failures, so that no rank is left waiting in a collective:
- while setting up (spec, data, device, run folder) each stage ends with a gather of every
  rank's outcome: if any rank failed, rank 0 prints one message naming the rank (or the error
  all ranks share) and every rank exits with status 2;
- during training a failure on one rank (a kernel error, a bug, SIGTERM, a second Ctrl-C) is
  known to that rank only: it prints one message naming itself and calls MPI_Abort, which ends
  every rank at once. Checkpoints are written atomically, so the last good one is what is left;
- a loss that is not finite, and a first Ctrl-C on any rank, travel in the step's all-reduce:
  every rank stops after the same step, as one device would (cnnc/distributed/trainer.py).
A rank killed outright (SIGKILL) cannot speak: then the launcher ends the others and reports.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TextIO

from cnnc import settings
from cnnc.distributed.comm import (
    MISSING_MPI,
    Comm,
    DistributedError,
    MPIComm,
    allgather_json,
    mpi_available,
)
from cnnc.errors import CnncError
from cnnc.train.loop import TrainingDiverged, TrainingInterrupted
from cnnc.train.session import RunOptions


def wanted(distributed: bool | None) -> bool:
    """True for a data-parallel run: asked for (--distributed), or started by an MPI launcher
    as one of several processes. Either without mpi4py is an error, not N lone runs."""
    ranks = settings.launcher_ranks()
    if distributed:
        if not mpi_available():
            raise DistributedError(f"--distributed: {MISSING_MPI}")
        return True
    if ranks is not None and ranks > 1:
        if not mpi_available():
            raise DistributedError(
                f"cnnc run was started by an MPI launcher as one of {ranks} processes, but "
                "mpi4py is not installed, so each would train alone",
                hint="install cnnc's mpi extra (pip install -e '.[mpi]'), or start one process")
        return True
    return False


class _PeerFailed(Exception):
    """Another rank failed while setting up; rank 0 reports it."""

    def __init__(self, status: int):
        self.status = status


def collectively(comm: Comm, stage: Callable[[], object]) -> None:
    """Run a setup stage on every rank, then agree whether it failed anywhere."""
    error: CnncError | None = None
    try:
        stage()
    except CnncError as err:
        error = err
    outcome = None if error is None else [error.render(), error.exit_status]
    outcomes = allgather_json(comm, outcome)
    failed = [(r, o) for r, o in enumerate(outcomes) if o is not None]
    if not failed:
        return
    if comm.rank != 0:
        raise _PeerFailed(failed[0][1][1])
    if error is not None:
        raise error
    rank, (text, status) = failed[0]
    err = DistributedError(f"rank {rank} of {comm.size}: {text}")
    err.exit_status = status
    raise err


def fail_alone(comm: Comm, err: BaseException, checkpoint: str | None) -> None:
    """One rank's failure: say so once, naming the rank, and end every rank (MPI_Abort)."""
    if isinstance(err, CnncError):
        text, status = err.render(), err.exit_status
    elif isinstance(err, KeyboardInterrupt):
        text, status = "interrupted", 130
    else:
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
        text, status = f"{type(err).__name__}: {err}", 1
    kept = f"; the last good checkpoint is {checkpoint}" if checkpoint else ""
    print(f"cnnc: rank {comm.rank} of {comm.size} failed: {text}\n"
          f"cnnc: stopping all {comm.size} ranks{kept}", file=sys.stderr, flush=True)
    comm.abort(status)


class _Terminated(BaseException):
    """SIGTERM on this rank (kill, a scheduler's cancel): a failure of this rank."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated


def run_distributed(opts: RunOptions, out: TextIO) -> int:
    return run_ranked(opts, out, MPIComm())


def run_ranked(opts: RunOptions, out: TextIO, comm: Comm) -> int:
    """`cnnc run` as rank comm.rank of comm.size; returns this rank's exit status."""
    from cnnc.distributed.run import DistributedRun

    run = DistributedRun(opts, out, comm)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
    try:
        return _run_stages(run, comm)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _checkpoint(run) -> str | None:
    folder = run.session.folder
    return str(folder.checkpoint) if folder is not None and folder.checkpoint.exists() else None


def _run_stages(run, comm: Comm) -> int:
    try:
        for stage in run.stages():
            collectively(comm, stage)
    except _PeerFailed as peer:
        return peer.status
    except CnncError:
        raise  # every rank knows it failed (collectively): rank 0 reports it, as cnnc does
    except _Terminated:
        fail_alone(comm, DistributedError("terminated (SIGTERM)"), None)
        return 143
    except BaseException as err:
        fail_alone(comm, err, None)
        raise
    try:
        run.header()
        run.train()
        run.finish()
    except TrainingInterrupted as stop:  # every rank stopped after the same step
        run.write_summary("interrupted")
        if comm.rank == 0:
            print(f"cnnc: interrupted; checkpoint saved in {stop.checkpoint} (step {stop.step})"
                  f". Continue with: cnnc run {run.session.spec_path} --resume "
                  f"{run.session.folder.path}",
                  file=sys.stderr)
        return 130
    except TrainingDiverged as err:  # every rank saw the same summed loss
        run.write_summary("stopped: the loss diverged")
        if comm.rank == 0:
            raise
        return err.exit_status
    except _Terminated:
        fail_alone(comm, DistributedError("terminated (SIGTERM)"), _checkpoint(run))
        return 143
    except BaseException as err:
        fail_alone(comm, err, _checkpoint(run))
        raise
    return 0
