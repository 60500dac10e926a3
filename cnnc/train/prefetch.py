"""A bounded prefetch queue for the training loop (a train-stage helper): the next batches' data
(reads of a streamed dataset, augmentation, mixing) prepared on a worker thread while the device
runs the current step.

The worker computes exactly what the loop would compute itself, in the same order, from pure
functions of (seed, epoch, position): what it prepares never depends on when it runs, so a run
with prefetching reaches the same weights bit for bit as one without. The queue holds at most
`depth` batches, so memory grows by `depth` batches and no more. An error on the worker is
raised in the loop's thread at the batch it was preparing; `close` (always called, on Ctrl-C and
on errors too) stops the worker and waits for it, so no thread outlives its epoch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any, final

from cnnc.errors import InternalError

# Batches prepared ahead by default (the train section's `prefetch`): two keep the device fed
# when preparing a batch takes about as long as a step, at the memory of two batches.
DEFAULT_DEPTH = 2
# How long a blocked put or get waits before looking at the stop flag or the worker again.
_POLL_S = 0.05


@final
class Prefetcher:
    """Calls make(key) for each key in order on a worker thread, at most `depth` results ahead
    of `get`; use as a context manager (or call `close`)."""

    def __init__(self, make: Callable[[Any], Any], keys: Iterable[Any], depth: int,
                 name: str = "cnnc-prefetch"):
        if depth < 1:
            raise InternalError(f"a prefetch queue needs a depth of at least 1, got {depth}")
        self._make = make
        self._keys = list(keys)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        for key in self._keys:
            if self._stop.is_set():
                return
            try:
                item = (key, self._make(key), None)
            except BaseException as err:  # noqa: BLE001 (handed to the loop's thread, raised there)
                self._put((key, None, err))
                return
            if not self._put(item):
                return

    def _put(self, item: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self, key: Any) -> Any:
        """The result for `key`, which must be the next key in order; re-raises the worker's
        error for it."""
        while True:
            try:
                got, value, err = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise InternalError(f"the prefetch thread stopped before preparing {key!r}"
                                        ) from None
        if err is not None:
            raise err
        if got != key:
            raise InternalError(f"the prefetch queue prepared {got!r} where {key!r} was asked "
                                "for: the loop and the queue disagree on the order")
        return value

    def close(self, timeout: float = 10.0, strict: bool = True) -> None:
        """Stop the worker (after the batch it is preparing) and wait for it; strict: an error
        if it has not stopped within `timeout` (a daemon thread, it cannot keep the process)."""
        self._stop.set()
        while True:  # make room, so that a worker blocked on a full queue sees the flag
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)
        if strict and self._thread.is_alive():
            raise InternalError(f"the prefetch thread did not stop within {timeout:g} s")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(strict=exc[0] is None)  # never hide the error that ends the epoch
