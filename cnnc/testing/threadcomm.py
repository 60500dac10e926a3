"""Ranks as threads of one process: a Comm (cnnc/distributed/comm.py) for tests without MPI.

Each collective is two barriers: every thread deposits its contribution, then every thread
computes the result from all contributions in rank order (so every rank gets the same bits, as
with MPI) and the slots are cleared for the next collective. `abort` breaks the barrier, so the
other threads fail instead of waiting forever.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np


class RankAborted(RuntimeError):
    """Raised in a thread-rank when another rank aborted."""


class ThreadGroup:
    def __init__(self, size: int, timeout: float = 120.0):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=timeout)
        self.slots: list[Any] = [None] * size
        self.aborted: int | None = None

    def comms(self) -> list[ThreadComm]:
        return [ThreadComm(self, r) for r in range(self.size)]

    def run(self, target: Callable[[ThreadComm], Any]) -> list[Any]:
        """target(comm) on a thread per rank; the results in rank order (re-raises the first
        error, in rank order)."""
        results: list[Any] = [None] * self.size
        errors: list[BaseException | None] = [None] * self.size

        def main(comm: ThreadComm) -> None:
            try:
                results[comm.rank] = target(comm)
            except BaseException as err:  # noqa: BLE001 (re-raised in the caller's thread)
                errors[comm.rank] = err
                self.barrier.abort()

        threads = [threading.Thread(target=main, args=(c,)) for c in self.comms()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for err in errors:
            if err is not None and not isinstance(err, threading.BrokenBarrierError):
                raise err
        for err in errors:
            if err is not None:
                raise err
        return results


class ThreadComm:
    def __init__(self, group: ThreadGroup, rank: int):
        self.group = group
        self.rank = rank
        self.size = group.size
        self.local_rank, self.local_size = rank, group.size

    def _exchange(self, value: Any) -> list[Any]:
        g = self.group
        g.slots[self.rank] = value
        g.barrier.wait()
        everything = list(g.slots)
        g.barrier.wait()  # everyone has read the slots before any rank writes the next ones
        return everything

    def allreduce_sum(self, buf: np.ndarray) -> None:
        parts = self._exchange(buf.copy())
        total = parts[0].copy()
        for p in parts[1:]:
            total += p
        buf[...] = total

    def allgather(self, row: np.ndarray) -> np.ndarray:
        return np.stack(self._exchange(np.array(row, copy=True)))

    def bcast(self, buf: np.ndarray, root: int = 0) -> None:
        parts = self._exchange(buf.copy() if self.rank == root else None)
        buf[...] = parts[root]

    def abort(self, status: int) -> None:
        self.group.aborted = self.rank
        self.group.barrier.abort()
        raise RankAborted(f"rank {self.rank} aborted with status {status}")
