"""Training steps' figures in device buffers, and the pinned, double-buffered input uploads of
queued steps: the OpenCL runtime's side of steps enqueued without a host stall.

A queued training step (OpenCLExecutable.run with a Record and nothing to fetch) ends with one
small kernel (kernels/step_figures.cl) that writes the step's loss and count of right
predictions into the next slot of two device arrays; the host reads every slot at once when
the training loop asks (every few steps), instead of waiting for every step.

Its inputs go through pinned host memory (CL_MEM_ALLOC_HOST_PTR, mapped once: what GPU drivers
copy from by DMA without staging) into device buffers of their own, in two sets used in turn,
and, on a GPU, uploaded on a second queue: the next batch is written and uploaded while the
device still runs the current step, whose first kernel waits for its own upload only (on a CPU
the copy is a memcpy by the same cores, enqueued on the compute queue). A set is written
again two steps later, after the step that used it has finished (`InFlight` waits for that):
the host never runs more than two steps ahead, so it holds at most two batches.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from cnnc.backends.opencl.device import _cl
from cnnc.backends.opencl.program import kernel_group_size
from cnnc.backends.step_figures import StepFigures
from cnnc.errors import DeviceError

# Slots of the device arrays: more steps than this unread, and the backend reads them itself.
CAPACITY = 256
# The record kernel's work-group (a power of two), halved while the kernel allows less.
GROUP = 64
# Queued steps on the device at once; also how many sets of pinned inputs there are.
IN_FLIGHT = 2


class DeviceStepFigures:
    """The slots of one backend's queue: `record` enqueues a step's kernel, `read` drains."""

    def __init__(self, backend: Any):
        cl = _cl()
        self.backend = backend
        self.losses = backend.allocate(4 * CAPACITY, "the steps' losses")
        self.correct = backend.allocate(4 * CAPACITY, "the steps' counts of right predictions")
        self.used = 0
        self._kernels: dict[bool, tuple[Any, int]] = {}
        self._done: list[StepFigures] = []  # read early because every slot was used
        self._int32 = np.int32
        self._cl = cl

    def _kernel(self, sparse: bool) -> tuple[Any, int]:
        """The record kernel for class-index (sparse) or one-hot targets, and its group size."""
        found = self._kernels.get(sparse)
        if found is None:
            group = GROUP
            while True:
                kernel = self.backend.programs.kernel(
                    "step_figures.cl", "record_step", {"SPARSE": int(sparse), "GROUP": group})
                if group == 1 or group <= min(kernel_group_size(kernel, self.backend.device),
                                              self.backend.device.limits.max_group):
                    break
                group //= 2
            kernel.set_arg(6, self.losses)
            kernel.set_arg(7, self.correct)
            found = self._kernels[sparse] = (kernel, group)
        return found

    def prepare(self, sparse: bool) -> None:
        """Build the record kernel now (a run does it before its first epoch)."""
        self._kernel(sparse)

    def record(self, queue: Any, loss: Any, pred: Any, target: Any, rows: int, cols: int,
               sparse: bool, wait_for: Any = None) -> Any:
        """Enqueue the step's record into the next slot; returns the kernel's event."""
        if self.used == CAPACITY:
            self._done += self._read_slots()
        kernel, group = self._kernel(sparse)
        i32 = self._int32
        for i, arg in enumerate((loss, pred, target, i32(rows), i32(cols), i32(self.used))):
            kernel.set_arg(i, arg)
        event = self._cl.enqueue_nd_range_kernel(queue, kernel, (group,), (group,),
                                                 wait_for=wait_for)
        self.used += 1
        return event

    def read(self) -> list[StepFigures]:
        """The figures of every step recorded since the last read, in order (waits for them)."""
        done, self._done = self._done + self._read_slots(), []
        return done

    def _read_slots(self) -> list[StepFigures]:
        n = self.used
        if n == 0:
            return []
        cl = self._cl
        losses = np.empty(n, np.float32)
        correct = np.empty(n, np.int32)
        queue = self.backend.queue
        try:
            cl.enqueue_copy(queue, losses, self.losses, is_blocking=False)
            cl.enqueue_copy(queue, correct, self.correct, is_blocking=False)
            self.backend.wait("reading the training steps' losses")
        except cl.Error as err:
            raise DeviceError(f"OpenCL error while reading the training steps' losses: {err}"
                              ) from None
        self.used = 0
        return [StepFigures(float(loss), int(c)) for loss, c in zip(losses, correct,
                                                                     strict=True)]


class InputSet:
    """One set of a queued run's inputs: pinned host arrays and the device buffers they are
    uploaded to (outside the arena, so that an upload never overwrites what a step still
    reads)."""

    def __init__(self, index: int, host: dict[str, np.ndarray], device: dict[str, Any]):
        self.index, self.host, self.device = index, host, device
        # The events of the set's last uploads. pyopencl's event of a copy from host memory
        # waits for the copy when it is dropped, and on one in-order queue that copy runs after
        # the step before: dropped at once, the host would wait for every step. Kept until the
        # set is written again, when make_room has seen the step that read them finish.
        self.uploads: list[Any] = []


class QueuedInputs:
    """IN_FLIGHT input sets for a graph's inputs, used in turn."""

    def __init__(self, backend: Any, shapes: Mapping[str, tuple[tuple[int, ...], np.dtype]]):
        cl = _cl()
        flags = cl.mem_flags.ALLOC_HOST_PTR | cl.mem_flags.READ_ONLY
        self._pinned: list[Any] = []  # the pinned buffers stay alive while mapped
        self.sets: list[InputSet] = []
        for index in range(IN_FLIGHT):
            host, device = {}, {}
            for name, (shape, dtype) in shapes.items():
                nbytes = max(int(np.prod(shape)) * dtype.itemsize, 4)
                try:
                    buf = cl.Buffer(backend.device.context, flags, nbytes)
                    host[name], _ = cl.enqueue_map_buffer(
                        backend.queue, buf, cl.map_flags.WRITE, 0, shape, dtype,
                        is_blocking=True)
                except cl.Error as err:
                    raise DeviceError(f"cannot allocate pinned host memory for input "
                                      f"'{name}' ({nbytes} bytes): {err}") from None
                self._pinned.append(buf)
                device[name] = backend.allocate(nbytes, f"input '{name}' (set {index + 1})")
            self.sets.append(InputSet(index, host, device))
        self.turn = 0

    def next_set(self) -> InputSet:
        found = self.sets[self.turn]
        self.turn = (self.turn + 1) % IN_FLIGHT
        return found


class InFlight:
    """The end events of an executable's queued steps: `make_room` waits until fewer than
    IN_FLIGHT are unfinished (the oldest's pinned inputs may then be written again)."""

    def __init__(self) -> None:
        self.events: deque[Any] = deque()
        self.waits = 0  # times the host waited for a step (tests count them)

    def make_room(self) -> None:
        complete = _cl().command_execution_status.COMPLETE
        while self.events and self.events[0].command_execution_status == complete:
            self.events.popleft()
        while len(self.events) >= IN_FLIGHT:
            self.waits += 1
            try:
                self.events.popleft().wait()
            except _cl().Error as err:
                raise DeviceError(f"OpenCL error while running a queued training step: {err}"
                                  ) from None

    def add(self, event: Any) -> None:
        self.events.append(event)
