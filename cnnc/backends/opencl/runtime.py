"""The OpenCL runtime: state buffers, and compiled graphs enqueued without host round trips.

The last stage of the OpenCL backend, and free of op logic: `plan.make_plan` says what to launch
and where every tensor lives; this module builds the kernels (through the program cache),
allocates the arenas (as many buffers as the device's largest allocation requires), sets each
launch's arguments once, and per run only writes the inputs, refreshes the step-dependent
scalars, enqueues every launch on one in-order queue and reads back what was asked for; the
launches the plan hoists (computed from the weights alone) run only when the weights changed
since they last ran. State tensors (parameters, optimizer slots) live in their own buffers
across runs. A run may pause
after the nodes named in `exchange` to let the host replace their values (the collectives of
data-parallel training); it costs two blocking copies each, and nothing otherwise. A training
step run with a Record and nothing to fetch is queued without waiting for it: its loss and count
of right predictions stay on the device until read_step_figures (queued_steps.py).

A kernel may allow fewer work-items per group than the device (CL_KERNEL_WORK_GROUP_SIZE, e.g.
a GEMM that needs many registers), or need more local memory than the plan assumed: that is
known only once it is built. Compiling then plans again within the kernel's limits.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from cnnc.backends.base import Exchange, check_exchange, check_feeds, check_fetch, host_dtype
from cnnc.backends.opencl.chain import (
    InArena,
    Link,
    Place,
    Routes,
    Shared,
    await_chain,
    chain_source,
    chains_apply,
    counters,
    plan_chains,
    route,
    unit_source,
)
from cnnc.backends.opencl.device import Device, _cl, select_device
from cnnc.backends.opencl.launches import (
    Arg,
    FirstIndex,
    Float,
    Int,
    Launch,
    Null,
    ScalarsAt,
    Step,
    UInt,
    UpdateScalars,
    Value,
    Workspace,
    Zeros,
)
from cnnc.backends.opencl.plan import ExecutionPlan, make_plan
from cnnc.backends.opencl.program import (
    UnitFailed,
    kernel_group_size,
    kernel_local_memory,
    kernel_options,
    link_cached,
    program_cache,
)
from cnnc.backends.opencl.queued_steps import (
    IN_FLIGHT,
    DeviceStepFigures,
    InFlight,
    InputSet,
    QueuedInputs,
)
from cnnc.backends.opencl.shared_io import SharedIO, shares_host_memory
from cnnc.backends.opencl.target import Limits, Target
from cnnc.backends.opencl.tiling import local_tile_bytes
from cnnc.backends.step_figures import Record, StepFigures
from cnnc.errors import CnncError, DeviceError, InputError, InternalError
from cnnc.ir.graph import Graph, Node, StateSpec
from cnnc.ir.updates import step_scalars
from cnnc.passes.memplan import workspace_name

# The guard regions of a canary backend: bytes before and after each buffer (at least), and
# the 32-bit pattern they hold (a NaN no kernel computes).
CANARY_BYTES = 1024
CANARY = 0x7FA5C3E1

OOM_HINT = "lower the batch size (--batch), or pick a device with more memory (--device)"

# Plans made again within a kernel's limits before giving up (each lowers a limit).
MAX_REPLANS = 8

# Scalar launch arguments, by the NumPy type that gives the kernel parameter's C type.
# Where a direct run leaves the input arguments (OpenCLExecutable._input_set): at the shared
# allocations (shared_io.py), neither the arena (None) nor a queued input set (its index).
_SHARED = -2

SCALAR_TYPES = {Int: np.int32, UInt: np.uint32, Float: np.float32}


def _is_out_of_memory(err: Exception) -> bool:
    cl = _cl()
    code = getattr(err, "code", None)
    return code in (
        cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE,
        cl.status_code.OUT_OF_RESOURCES,
        cl.status_code.OUT_OF_HOST_MEMORY,
        cl.status_code.INVALID_BUFFER_SIZE,
    )


def target_for(device: Device, target: Target | None = None) -> Target:
    """The tile choices for `device`: its own kind's, or `target`'s; always within the device's
    limits (and `target`'s, where a test sets tighter ones)."""
    if target is None:
        # A simulator (Oclgrind) runs the GPU code paths: those are what it is there to check.
        kind = "gpu" if device.kind == "simulator" else device.kind
        return Target(
            kind, device.compute_units, device.limits, native_vector=device.native_vector_width
        )
    return replace(target, limits=device.limits.tighter(target.limits))


class KernelLimitExceeded(DeviceError):
    """A built kernel allows less than its launch asks for; `limits` are what to plan within."""

    def __init__(self, message: str, limits: Limits):
        super().__init__(message)
        self.limits = limits


def _device_error(err: Exception, what: str, device: Device) -> DeviceError:
    if _is_out_of_memory(err):
        return DeviceError(
            f"out of device memory on {device.describe()} while {what}", hint=OOM_HINT
        )
    return DeviceError(f"OpenCL error on {device.describe()} while {what}: {err}")


class OpenCLBackend:
    """State in device buffers; graphs compiled to launch lists for one device."""

    name = "opencl"

    def __init__(
        self,
        device: str | Device | None = None,
        dtype: str = "float32",
        *,
        target: Target | None = None,
        isolate: bool = False,
        canary: bool = False,
        direct_io: bool = True,
    ):
        """target: tile choices as for another kind of device (tests run the GPU tilings on a
        CPU device this way), with tighter limits if it sets any (tests split the memory plan
        this way); default: the device's own. isolate: give every planned tensor its own
        allocation instead of a place in an arena, so that a tool such as Oclgrind sees an
        access past a tensor's end (inside an arena it is just another tensor's bytes).
        canary: isolate, and put a guard region filled with a known pattern before and after
        every buffer, for check_canaries to find a kernel that wrote outside its tensor (the
        tuner's gate, as CLBlast's tuner does). direct_io: where the device shares the host's
        memory, runs write their inputs and read their outputs in place, without copy commands
        (shared_io.py); False: always through copies."""
        if dtype != "float32":
            raise CnncError(
                f"the opencl backend computes in float32, not {dtype!r}",
                hint="use backend='numpy' for float64",
            )
        cl = _cl()
        self.device = device if isinstance(device, Device) else select_device(device)
        self.target = target_for(self.device, target)
        # The latency path (latency.py) for a backend with the device's own tile choices; not
        # for the tests' and the tuner's isolated buffers, nor another target's tilings.
        self._latency_path = target is None and not (isolate or canary)
        # Small-batch forward passes' runs of launches as one launch each (chain.py): CPU
        # devices only; benchmarks turn it off to compare.
        self.chains = self._latency_path and self.device.kind == "cpu"
        # Plans made for chains (BindContext.serial) whether or not chains apply: the
        # qualification and the Oclgrind tests check those kernels (gemv_parts, ...) this way,
        # launched one by one where no chain is built.
        self.serial_plans = False
        self._companion: OpenCLBackend | None = None
        self._chooser_of: Any = None  # (a companion: whose variant chooser it follows)
        self.isolate = isolate or canary
        self.canary = canary
        self.direct_io = direct_io
        self._guarded: list[tuple[Any, int, int, str]] = []  # (whole buffer, guard, size, what)
        self.programs = program_cache(self.device)
        self.queue = cl.CommandQueue(self.device.context)
        self._state: dict[str, tuple[Any, StateSpec]] = {}
        self.state_version = 0  # bumped when a state buffer is replaced
        # Bumped whenever state may have changed (written from the host, or a run of a graph
        # that updates it is enqueued): an executable's hoisted launches (plan.hoists) run again
        # at its next run after a change, and only then.
        self.weights_version = 0
        self.waits = 0  # times the host waited for the whole queue (tests count them)
        self._figures: DeviceStepFigures | None = None  # made by the first queued step
        self._upload_queue: Any = None  # the queued steps' input uploads (queued_steps.py)
        # Kernel variants for a graph at a batch size, by node name (BindContext.variants):
        # the tuner installs its choices here; by default every node gets the defaults.
        self.choose_variants: Callable[[Graph, int], Mapping[str, Mapping[str, Any]]] = (
            lambda graph, batch: {}
        )

    # ---------------------------------------------------------------- memory

    def allocate(self, nbytes: int, what: str) -> Any:
        cl = _cl()
        if nbytes > self.device.max_allocation:
            raise DeviceError(
                f"{what} needs {nbytes / 2**20:.1f} MiB in one buffer, more than the "
                f"{self.device.max_allocation / 2**20:.0f} MiB {self.device.describe()} "
                "allows",
                hint=OOM_HINT,
            )
        try:
            if self.canary:
                return self._guarded_buffer(max(nbytes, 4), what)
            return cl.Buffer(self.device.context, cl.mem_flags.READ_WRITE, max(nbytes, 4))
        except cl.Error as err:
            raise _device_error(err, f"allocating {what} ({nbytes} bytes)", self.device) from None

    def _guarded_buffer(self, nbytes: int, what: str) -> Any:
        """A sub-buffer of `nbytes` with CANARY-filled guard regions around it."""
        cl = _cl()
        align = max(int(self.device.cl_device.mem_base_addr_align) // 8, 4)
        guard = -(-CANARY_BYTES // align) * align  # a sub-buffer's origin must be aligned
        whole = cl.Buffer(self.device.context, cl.mem_flags.READ_WRITE, nbytes + 2 * guard)
        pattern = np.full((nbytes + 2 * guard + 3) // 4, CANARY, np.uint32)
        cl.enqueue_copy(self.queue, whole, pattern[: (nbytes + 2 * guard) // 4],
                        is_blocking=True)
        self._guarded.append((whole, guard, nbytes, what))
        return whole.get_sub_region(guard, nbytes)

    def check_canaries(self) -> list[str]:
        """With canary=True: what was written outside its buffer since the buffers were made
        (one line per buffer touched), after waiting for the queue. The buffers of finished
        executables are forgotten; the state's are kept and checked again next time."""
        cl = _cl()
        self._finish("checking the guard regions")
        found = []
        for whole, guard, nbytes, what in self._guarded:
            host = np.empty((nbytes + 2 * guard) // 4, np.uint32)
            cl.enqueue_copy(self.queue, host, whole, is_blocking=True)
            before = np.flatnonzero(host[: guard // 4] != CANARY)
            after = np.flatnonzero(host[(guard + nbytes + 3) // 4:] != CANARY)
            if before.size:
                found.append(f"{what}: written up to {guard - 4 * before[0]} bytes before it")
            if after.size:
                found.append(f"{what}: written up to {4 * after[-1] + 4} bytes after it")
        self._guarded = [g for g in self._guarded if g[3].startswith("state ")]
        return found

    # ---------------------------------------------------------------- state

    def init_state(self, specs: Sequence[StateSpec], values: Mapping[str, np.ndarray]) -> None:
        for spec in specs:
            if spec.name not in values:
                raise CnncError(f"no initial value for state tensor '{spec.name}'")
            host = self._host_array(spec, values[spec.name])
            old = self._state.get(spec.name)
            if old is not None and old[1].shape == spec.shape:
                buf = old[0]
            else:
                buf = self.allocate(host.nbytes, f"state '{spec.name}'")
                self.state_version += 1
            self._state[spec.name] = (buf, spec)
            self._write(buf, host, f"writing state '{spec.name}'")
        self.weights_version += 1
        self._finish("initialising state")

    def read_state(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        cl = _cl()
        try:
            out = {name: self.enqueue_state_read(name) for name in names}
        except cl.Error as err:
            raise _device_error(err, "reading state", self.device) from None
        self._finish("reading state")
        return out

    def write_state(self, values: Mapping[str, np.ndarray]) -> None:
        for name, value in values.items():
            buf, spec = self._state_entry(name)
            self._write(buf, self._host_array(spec, value), f"writing state '{name}'")
        self.weights_version += 1
        self._finish("writing state")

    def state_buffer(self, name: str) -> Any:
        return self._state_entry(name)[0]

    def enqueue_state_read(self, name: str) -> np.ndarray:
        """A host array that a copy of the state tensor, now enqueued, fills by the next
        `queue.finish()`."""
        buf, spec = self._state_entry(name)
        host = np.empty(spec.shape, dtype=np.float32)
        _cl().enqueue_copy(self.queue, host, buf, is_blocking=False)
        return host

    def has_state(self, name: str) -> bool:
        return name in self._state

    def _state_entry(self, name: str) -> tuple[Any, StateSpec]:
        try:
            return self._state[name]
        except KeyError:
            raise CnncError(
                f"unknown state tensor '{name}' (not initialised on this backend)"
            ) from None

    @staticmethod
    def _host_array(spec: StateSpec, value: Any) -> np.ndarray:
        host = np.ascontiguousarray(value, dtype=np.float32)
        if spec.shape == () and np.ndim(value) == 0:
            host = host.reshape(())  # ascontiguousarray makes a 0-d value 1-d
        if host.shape != tuple(spec.shape):
            raise CnncError(
                f"state '{spec.name}' has shape {tuple(spec.shape)}, got an array "
                f"of shape {host.shape}"
            )
        return host

    def _write(self, buf: Any, host: np.ndarray, what: str) -> None:
        cl = _cl()
        try:
            cl.enqueue_copy(self.queue, buf, host, is_blocking=True)
        except cl.Error as err:
            raise _device_error(err, what, self.device) from None

    def _finish(self, what: str) -> None:
        self.wait(what)

    def wait(self, what: str) -> None:
        """Wait until everything enqueued has run (`what`: for the error message)."""
        cl = _cl()
        self.waits += 1
        try:
            self.queue.finish()
        except cl.Error as err:
            raise _device_error(err, what, self.device) from None

    # ---------------------------------------------------------------- queued steps

    def step_figures(self) -> DeviceStepFigures:
        if self._figures is None:
            self._figures = DeviceStepFigures(self)
        return self._figures

    def upload_queue(self) -> Any:
        """Where queued steps upload their inputs: on a GPU a second queue, so that the copy
        overlaps the step before; on a CPU, where a copy is a memcpy by the same cores, the
        compute queue (pocl's waits across queues made steps slower, not faster)."""
        if self._upload_queue is None:
            separate = self.device.kind == "gpu"
            self._upload_queue = (_cl().CommandQueue(self.device.context) if separate
                                  else self.queue)
        return self._upload_queue

    def read_step_figures(self) -> list[StepFigures]:
        """The figures of the steps run with a Record since the last call, in order."""
        return [] if self._figures is None else self._figures.read()

    # ---------------------------------------------------------------- graphs

    def plan(self, graph: Graph, batch: int, *, keep: Iterable[str] = ()) -> ExecutionPlan:
        return make_plan(
            graph,
            batch,
            self.target,
            alignment=self.device.base_alignment,
            keep=keep,
            variants=self.choose_variants(graph, batch),
            serial=self.serial_plans or self.chained(graph, batch),
        )

    def chained(self, graph: Graph, batch: int) -> bool:
        """Whether compiled passes of `graph` at `batch` run their launches in chains."""
        return chains_apply(self.device, graph, batch, self.chains)

    def compile(self, graph: Graph, batch: int, *, keep: Iterable[str] = ()) -> OpenCLExecutable:
        """keep: values to keep readable besides the outputs ('*' for every value)."""
        if not isinstance(batch, int) or batch <= 0:
            raise InputError(f"the batch size must be a positive integer, got {batch!r}")
        for _ in range(MAX_REPLANS):
            try:
                return OpenCLExecutable(self, self.plan(graph, batch, keep=keep))
            except KernelLimitExceeded as err:
                # Every later plan of this backend stays within what the kernel allows.
                self.target = replace(self.target, limits=err.limits)
        return OpenCLExecutable(self, self.plan(graph, batch, keep=keep))

    def compile_inference(self, graph: Graph, batch: int, *,
                          keep: Iterable[str] = ()) -> Any:
        """compile() for a forward pass that changes no state, on the device latency.py's rule
        picks: this backend's, or its device's one-thread companion, which then runs with this
        backend's weights (a CompanionExecutable)."""
        from cnnc.backends.opencl import latency

        companion = self.companion_for(graph, batch)
        if companion is not None:
            exe = companion.compile(graph, batch, keep=keep)
            if not exe._writes_state:
                state = [s for s in graph.state if self.has_state(s.name)]
                return latency.CompanionExecutable(exe, self, companion, state)
        return self.compile(graph, batch, keep=keep)

    def companion_for(self, graph: Graph, batch: int) -> OpenCLBackend | None:
        """The backend of the device's companion where latency.py's rule runs a forward pass
        of `graph` at `batch` there (made on first use, with this backend's tuning), else
        None."""
        from cnnc.backends.opencl import latency

        if not self._latency_path:
            return None
        timed = getattr(self.choose_variants, "companion_choice", None)  # (CachedVariants)
        device = latency.runs_on(self.device, graph, batch,
                                 None if timed is None else timed(self.device, graph, batch))
        if device is self.device:
            return None
        companion = self._companion
        if companion is None or companion.device is not device:
            companion = self._companion = OpenCLBackend(device, direct_io=self.direct_io)
        chooser = self.choose_variants
        if companion._chooser_of is not chooser:  # (installed or replaced since)
            # the tuning cache's variants (CachedVariants) for the companion's own keys
            companion.choose_variants = (chooser.for_backend(companion)
                                         if hasattr(chooser, "for_backend")
                                         else (lambda graph, batch: {}))
            companion._chooser_of = chooser
        return companion


def _check_kernel_limits(
    kernels: Sequence[tuple[str, Launch, Any]], backend: OpenCLBackend
) -> None:
    """Raise KernelLimitExceeded, with the limits to plan within, if a launch asks a built kernel
    for a larger work-group than it allows or it needs more local memory than the device has."""
    device, limits = backend.device, backend.target.limits
    for node, lau, kernel in kernels:
        if lau.local_size is None:
            continue
        group = math.prod(lau.local_size)
        allowed = kernel_group_size(kernel, device)
        what = f"node '{node}' ({lau.file}:{lau.kernel})"
        if group > allowed:
            raise KernelLimitExceeded(
                f"{what}: the kernel allows {allowed} work-items per group, the plan {group}",
                limits.with_group_limit(allowed),
            )
        defines = lau.define_map
        if defines.get("LOCAL_TILE"):
            used, available = kernel_local_memory(kernel, device), device.limits.local_memory
            if used > available:
                planned = local_tile_bytes(defines)
                raise KernelLimitExceeded(
                    f"{what}: the kernel needs {used} bytes of local memory, the device has "
                    f"{available}",
                    limits.with_local_memory(planned - (used - available)),
                )


# What a run is doing while it enqueues its launches by the fast loop (OpenCLExecutable.run).
_LAUNCHING = "launching the kernels"


class Mirror:
    """A chained launch's kernel, whose arguments are also set on the chain's kernel: each on
    the chain's parameter it reaches the launch through (`slots`, chain.Routes), where it has
    one (not a literal, nor a pointer into the arena the chain receives once)."""

    __slots__ = ("chain", "real", "slots")

    def __init__(self, real: Any, chain: Any, slots: Sequence[int | None]):
        self.real, self.chain, self.slots = real, chain, slots

    def set_arg(self, index: int, value: Any) -> None:
        self.real.set_arg(index, value)
        slot = self.slots[index]
        if slot is not None:
            self.chain.set_arg(slot, value)


class BoundLaunch:
    """One launch with its kernel object; arguments set once, some refreshed per run, through
    `setter`: the kernel, or a Mirror that sets them on a chain's kernel too."""

    __slots__ = ("doing", "dynamic_args", "kernel", "launch", "node", "setter", "state_args")

    def __init__(self, node: str, launch: Launch, kernel: Any, setter: Any = None):
        self.node = node
        self.launch = launch
        self.kernel = kernel
        self.setter = kernel if setter is None else setter
        self.doing = f"running node '{node}' ({launch.file}:{launch.kernel})"  # for errors
        self.state_args: list[tuple[int, str]] = []  # set whenever the state buffers change
        self.dynamic_args: list[tuple[int, Step | FirstIndex]] = []  # set per run

    def enqueue(self, cl: Any, queue: Any, wait_for: Sequence[Any] | None = None) -> Any:
        """Enqueue the kernel (`cl`: the pyopencl module, looked up once by the caller)."""
        return cl.enqueue_nd_range_kernel(
            queue, self.kernel, self.launch.global_size, self.launch.local_size,
            wait_for=wait_for)


class OpenCLExecutable:
    """A graph bound to the device for one batch size."""

    def __init__(self, backend: OpenCLBackend, plan: ExecutionPlan):
        self.backend = backend
        self.plan = plan
        self.graph = plan.graph
        self.batch = plan.batch
        device = backend.device
        memory = plan.memory
        kernels = [
            (node, lau, backend.programs.kernel(lau.file, lau.kernel, lau.define_map))
            for node, lau in plan.launches()
        ]
        _check_kernel_limits(kernels, backend)
        self._layout_scalars(kernels)
        if backend.isolate:
            self.arenas = []
            self.buffers = {
                t.name: backend.allocate(t.nbytes, f"tensor '{t.name}'") for t in memory.tensors
            }
        else:
            what = f"the working memory of '{self.graph.name}' at batch {self.batch}"
            sizes = memory.sizes
            self.arenas = [
                backend.allocate(size, what if len(sizes) == 1 else f"{what} (part {i + 1})")
                for i, size in enumerate(sizes)
            ]
            cl = _cl()
            try:
                self.buffers = {
                    t.name: self.arenas[memory.arena_of(t.name)].get_sub_region(
                        memory.offsets[t.name], max(t.nbytes, 4)
                    )
                    for t in memory.tensors
                }
            except cl.Error as err:
                raise _device_error(err, "dividing the working memory", device) from None
        zeros = np.zeros(max(plan.zeros, 1), np.float32)
        self.zeros = backend.allocate(zeros.nbytes, "a buffer of zeros")
        backend._write(self.zeros, zeros, "zeroing")
        # Arguments that are graph inputs (or views of one): queued runs point them at the
        # input set of the run (queued_steps.QueuedInputs), other runs at the arena.
        roots = {memory.storage.get(name, name): name for name in self.graph.inputs}
        self._chain_buffers: list[Any] = []  # each chain's counters
        self._input_args: list[tuple[BoundLaunch, int, str]] = []
        self._value_args: list[tuple[Any, int, str]] = []  # (kernel, index, storage)
        # Runs of the run's launches that go as one launch (chain.py), each launch's
        # arguments set on the chain's kernel too (by the launch's index in `kernels`).
        self._chains, self._mirrors = self._make_chains(backend, kernels)
        every = [self._bind_args(node, lau, kernel, roots, self._mirrors.get(k))
                 for k, (node, lau, kernel) in enumerate(kernels)]
        # The hoisted launches (computed from the weights alone) and those of every run.
        self.prepare: list[BoundLaunch] = [b for b in every if plan.hoists(b.launch)]
        self.bound: list[BoundLaunch] = [b for b in every if not plan.hoists(b.launch)]
        self._shared = self._shared_io(backend, every)
        if self._shared is not None:
            storage = memory.storage
            self._shared_values = self._shared.views({
                name: (storage.get(name, name), plan.shape(name),
                       host_dtype(self.graph, name, np.float32))
                for name in (*self.graph.inputs, *self.graph.outputs)
                if name not in self.graph.state_map})
        self._prepared = -1  # the backend's weights_version the hoisted launches last ran at
        self.prepare_runs = 0  # times they ran (tests count them)
        self._writes_state = any(node.opdef.mutates for node in self.graph.nodes)
        self._dynamic = [b for b in self.bound if b.dynamic_args]
        # The run's launches as the arguments of pyopencl's enqueue call, for the loop of a run
        # with no exchange and no upload events (every predict): a batch-1 pass is mostly fixed
        # cost a launch, and BoundLaunch.enqueue's call and look-ups add to each (None: the
        # general loop, as benchmarks A/B it).
        self._calls: tuple[tuple[Any, Any, Any], ...] | None
        self._calls, self._call_doing = self._launch_calls()
        # Whether the run's last launch is a chain (its end awaited by polling, await_chain).
        self._ends_in_chain = bool(self._chains) and (
            self._chains[-1][0] + self._chains[-1][1] == len(self.bound))
        self._state_version = -1  # state arguments are (re)bound at the first run
        self._queued_inputs: QueuedInputs | None = None  # made by the first queued run
        self._input_set: int | None = None  # the set the input arguments point to (None: arena)
        self.in_flight = InFlight()
        # What each input takes at this batch size, worked out once: a feed that already is
        # exactly that (an array of the input's shape and host dtype, as Model passes them) is
        # what check_feeds would return, so run takes it without check_feeds' general checks
        # (measured 5-10 us a run on a loaded Zen 3 core, several times that after idle time: a
        # few percent of a small network's batch-1 forward pass).
        self._feed_types = {
            name: (self.graph.concrete_shape(name, self.batch),
                   np.dtype(host_dtype(self.graph, name, np.float32)))
            for name in self.graph.inputs}
        # Each list of names a run fetched, checked once: whether a run without a record or
        # an exchange can read them where the kernels write them (shared_io.py). After a
        # pause, check_fetch and SharedIO.serves each took ~12 us of a batch-1 run's ~350
        # (lenet5, Zen 3, load 3): every line of Python runs cold then.
        self._fetch_checked: dict[tuple[str, ...], bool] = {}

    # ---------------------------------------------------------------- arguments

    def value_buffer(self, value: str) -> Any:
        return self.buffers[self.plan.memory.storage.get(value, value)]

    def _bind_args(self, node: str, lau: Launch, kernel: Any,
                   roots: Mapping[str, str], mirror: Mirror | None = None) -> BoundLaunch:
        """Set the arguments that never change; list those that do. roots: the storage of
        each input, to the input's name."""
        bound = BoundLaunch(node, lau, kernel, mirror)
        setter = bound.setter
        storage = self.plan.memory.storage
        for i, arg in enumerate(lau.args):
            if isinstance(arg, (Step, FirstIndex)):
                bound.dynamic_args.append((i, arg))
            elif isinstance(arg, Value) and arg.name in self.graph.state_map:
                bound.state_args.append((i, arg.name))
            else:
                setter.set_arg(i, self._fixed_arg(node, arg))
                if isinstance(arg, Value):
                    root = storage.get(arg.name, arg.name)
                    self._value_args.append((setter, i, root))
                    if root in roots:
                        self._input_args.append((bound, i, roots[root]))
        return bound

    def _make_chains(self, backend: OpenCLBackend, kernels: Sequence[tuple[str, Launch, Any]]
                     ) -> tuple[list[tuple[int, int, Any]], dict[int, Mirror]]:
        """The chains of the run's launches where the backend makes them (chain.py): each as
        (index of its first launch in the run, launches, the chain's kernel), and the mirror of
        each chained launch's kernel, by the launch's index in `kernels`."""
        if not (self.plan.serial and backend.chained(self.graph, self.batch)):
            return [], {}
        device = backend.device
        run = [(k, lau, kernel) for k, (_, lau, kernel) in enumerate(kernels)
               if not self.plan.hoists(lau)]
        launches = [lau for _, lau, _ in run]
        workers = device.compute_units
        programs = backend.programs

        def options(lau: Launch) -> tuple[str, ...]:
            return kernel_options(lau.kernel, lau.define_map)

        def plans() -> list[tuple[int, list[Link]]]:
            """Chains of the launches whose unit is not known not to compile."""
            return plan_chains(launches, [programs.source(lau.file) for lau in launches],
                               workers, device.cl_device.max_parameter_size,
                               skip=lambda lau: (lau.file, options(lau)) in programs.unchainable)

        built: list[tuple[int, list[Link], Routes, Any]] = []
        while True:  # each failure leaves one more kernel out: at most a pass of them
            built.clear()
            try:
                for first, links in plans():
                    units = [(unit_source(programs.source(link.launch.file), link, j),
                              options(link.launch)) for j, link in enumerate(links)]
                    routes = route(links, self._chain_place(
                        [kernels[k][0] for k, _, _ in run[first:first + len(links)]]))
                    main = chain_source(links, workers, routes)
                    built.append((first, links, routes, link_cached(programs, units, main)))
                break
            except UnitFailed as err:
                # A kernel whose helpers call work-item functions (they cannot see the
                # chain's ids) or synchronise: it runs as a launch of its own.
                lau = links[err.index].launch
                programs.unchainable.add((lau.file, options(lau)))
        chains: list[tuple[int, int, Any]] = []
        mirrors: dict[int, Mirror] = {}
        cl = _cl()
        for first, links, routes, program in built:
            kernel = cl.Kernel(program, "cnnc_chain")
            count = counters(links, workers)
            buf = backend.allocate(4 * count, "a chain's counters")
            backend._write(buf, np.zeros(count, np.uint32), "zeroing a chain's counters")
            kernel.set_arg(len(routes.params), buf)
            for arena, k in routes.arenas:
                kernel.set_arg(k, self.arenas[arena])
            self._chain_buffers.append(buf)
            for link, slots, (k, _, real) in zip(links, routes.slots,
                                                 run[first:first + len(links)], strict=True):
                mirrors[k] = Mirror(real, kernel, slots)
            chains.append((first, len(links), kernel))
        return chains, mirrors

    def _chain_place(self, nodes: Sequence[str]) -> Callable[[int, int, Arg], Place]:
        """Where a chain's launches (of `nodes`, in order) receive each argument from
        (chain.route): integers as literals; the parts of the arena that no run points
        elsewhere (workspaces, values that are neither inputs nor outputs nor state) as
        offsets into the arena, passed once; each other buffer as one parameter however many
        launches read it. pocl's enqueue call costs the host time per argument and per distinct
        buffer (chain.route)."""
        memory = self.plan.memory
        graph = self.graph
        # the storages that shared_io.py and queued input sets point elsewhere
        moved = {memory.storage.get(name, name) for name in (*graph.inputs, *graph.outputs)}

        def place(j: int, i: int, arg: Arg) -> Place:
            if isinstance(arg, (Int, UInt)):
                return arg.value
            if isinstance(arg, Zeros):
                return Shared(("zeros",))
            if isinstance(arg, Value) and arg.name in graph.state_map:
                return Shared(("state", arg.name))
            if isinstance(arg, Workspace):
                tensor = workspace_name(nodes[j], arg.index)
            elif isinstance(arg, Value):
                tensor = memory.storage.get(arg.name, arg.name)
            else:
                return Shared((j, i))  # a parameter of its own, as the launch has it
            if tensor in moved or not self.arenas:  # (isolated buffers have no arena)
                return Shared(("tensor", tensor))
            return InArena(memory.arena_of(tensor), memory.offsets[tensor])
        return place

    def _launch_calls(self) -> tuple[tuple[tuple[Any, Any, Any], ...], list[str]]:
        """The run's launches as pyopencl's enqueue arguments, a chain's as one; and for each,
        what it does (for errors)."""
        calls, doing = [], []
        starts = {first: (count, kernel) for first, count, kernel in self._chains}
        k = 0
        while k < len(self.bound):
            if k in starts:
                count, kernel = starts[k]
                calls.append((kernel, (self.backend.device.compute_units,), (1,)))
                doing.append(f"running nodes '{self.bound[k].node}' to "
                             f"'{self.bound[k + count - 1].node}' as one launch")
                k += count
                continue
            b = self.bound[k]
            calls.append((b.kernel, b.launch.global_size, b.launch.local_size))
            doing.append(b.doing)
            k += 1
        return tuple(calls), doing

    def _shared_io(self, backend: OpenCLBackend, every: Sequence[BoundLaunch]) -> SharedIO | None:
        """The inputs' and outputs' allocations shared with the host, where the device has them
        (shared_io.py), for runs that need no copy commands. Isolated buffers (Oclgrind, the
        tuner's canaries) keep every tensor in its own device buffer."""
        if backend.isolate or not backend.direct_io or not shares_host_memory(backend.device):
            return None
        memory = self.plan.memory
        sizes = {t.name: t.nbytes for t in memory.tensors}

        def storages(names: Iterable[str]) -> dict[str, int]:
            found = (memory.storage.get(n, n) for n in names)
            return {root: sizes[root] for root in found if root in sizes}
        hoisted = {root for b in self.prepare for i, arg in enumerate(b.launch.args)
                   if isinstance(arg, Value)
                   for root in (memory.storage.get(arg.name, arg.name),)}
        return SharedIO(backend.device, storages(self.graph.inputs),
                        storages(self.graph.outputs), self._value_args, hoisted)

    def _point_inputs(self, inputs: InputSet | None) -> None:
        """Point the launches that read inputs at `inputs`' buffers, or at the arena's."""
        index = None if inputs is None else inputs.index
        if index == self._input_set:
            return
        for b, i, name in self._input_args:
            b.setter.set_arg(i, self.value_buffer(name) if inputs is None
                             else inputs.device[name])
        self._input_set = index

    def _fixed_arg(self, node: str, arg: Arg) -> Any:
        """What the kernel receives for an argument that never changes."""
        if isinstance(arg, Value):
            return self.value_buffer(arg.name)
        if isinstance(arg, Workspace):
            return self.buffers[workspace_name(node, arg.index)]
        if isinstance(arg, Zeros):
            return self.zeros
        if isinstance(arg, Null):
            return None
        if isinstance(arg, UpdateScalars):
            return self.scalar_table
        if isinstance(arg, ScalarsAt):
            return np.int32(self._scalars_at[node])
        if type(arg) in SCALAR_TYPES:
            return SCALAR_TYPES[type(arg)](arg.value)
        raise InternalError(f"node '{node}': the runtime cannot pass launch argument {arg!r}")

    def _refresh_state_args(self) -> None:
        """Point launches at the current state buffers if init_state replaced any."""
        if self._state_version == self.backend.state_version:
            return
        for b in (*self.prepare, *self.bound):
            for i, name in b.state_args:
                if not self.backend.has_state(name):
                    raise CnncError(
                        f"state tensor '{name}' of '{self.graph.name}' has no value "
                        "on the device: initialise the state before running"
                    )
                b.setter.set_arg(i, self.backend.state_buffer(name))
        self._state_version = self.backend.state_version

    def _layout_scalars(self, kernels: Sequence[tuple[str, Launch, Any]]) -> None:
        """Give every update node that reads per-step scalars its place in one table; nodes
        with the same op and arguments (one optimizer's parameters) share theirs, so a step
        computes each distinct set of scalars once."""
        self._scalars_at: dict[str, int] = {}
        self._scalar_slots: list[tuple[Node, int]] = []  # a node of each set, where it starts
        at_of: dict[tuple[str, Any], int] = {}
        size = 0
        for name, lau, _ in kernels:
            if name in self._scalars_at or not any(isinstance(a, UpdateScalars)
                                                   for a in lau.args):
                continue
            node = self.graph.node(name)
            key = (node.op, node.attrs)
            if key not in at_of:
                at_of[key] = size
                self._scalar_slots.append((node, size))
                size += len(node.opdef.scalars(node.attrs, 0, 1.0))
            self._scalars_at[name] = at_of[key]
        self._scalar_count = size
        self.scalar_table = (self.backend.allocate(4 * size, "the optimizers' per-step scalars")
                             if size else None)
        # The table's last writes: pyopencl's event of a copy from host memory waits for the
        # copy when it is dropped, so each is kept until steps far later (queued steps run at
        # most IN_FLIGHT ahead) and is long done when it goes.
        self._scalar_writes: deque[Any] = deque(maxlen=2 * IN_FLIGHT + 2)

    def _write_scalars(self, cl: Any, step: int, learning_rate: float | None,
                       momentum: float | None = None) -> None:
        """Compute the run's per-step scalars and enqueue their one write to the table (ahead of
        the run's launches on the in-order queue, after the previous run's); `momentum`: one_cycle's
        for this step (None: the optimizer's own)."""
        if not self._scalar_count:
            return
        host = np.empty(self._scalar_count, np.float32)
        for node, at in self._scalar_slots:
            # an update without a learning rate (ema_update) gets 0.0, which it ignores
            lr = (learning_rate if learning_rate is not None
                  else node.attrs.get("learning_rate", 0.0))
            values = step_scalars(node.op, node.attrs, step, lr, momentum)
            host[at:at + len(values)] = values
        self._scalar_writes.append(
            cl.enqueue_copy(self.backend.queue, self.scalar_table, host, is_blocking=False))

    def _set_dynamic_args(self, step: int, first_example: int = 0) -> None:
        for b in self._dynamic:
            for i, arg in b.dynamic_args:
                if isinstance(arg, Step):
                    b.setter.set_arg(i, np.uint32(step & 0xFFFFFFFF))
                else:
                    b.setter.set_arg(i, np.uint32((first_example * arg.per_example) & 0xFFFFFFFF))

    # ---------------------------------------------------------------- running

    def run(
        self,
        feeds: Mapping[str, np.ndarray],
        fetch: Sequence[str],
        *,
        step: int = 0,
        learning_rate: float | None = None,
        first_example: int = 0,
        exchange: Exchange | None = None,
        record: Record | None = None,
        momentum: float | None = None,
    ) -> dict[str, np.ndarray]:
        """See Executable.run. With a `record` and nothing to fetch or exchange, the run is
        queued and this returns at once: the inputs are copied from pinned memory, and the host
        waits only for the run before the last one (the figures: read_step_figures)."""
        cl = _cl()
        checked = self._checked_feeds(feeds)
        key = tuple(fetch) if type(fetch) is not str else None
        servable = self._fetch_checked.get(key)
        storage = self.plan.memory.storage
        shared = self._shared
        if servable is None:
            check_fetch(self.graph, fetch, kept=self.plan.kept)
            servable = shared is not None and shared.serves(
                [storage.get(name, name) for name in fetch])
            self._fetch_checked[key] = servable
        pauses = self._pauses(exchange) if exchange else {}
        queued = record is not None and not fetch and not exchange
        if record is not None:
            self._check_record(record)
        inputs: InputSet | None = None
        # A direct run writes the inputs where the kernels read them and reads the outputs
        # where they are written: no copy commands (shared_io.py).
        direct = servable and record is None and not exchange
        if queued:
            self.in_flight.make_room()  # the set to write was used two runs ago
            inputs = self._inputs().next_set()
            for name, value in checked.items():
                np.copyto(inputs.host[name], value, casting="no")
            hosts = []
        elif direct:
            for name, value in checked.items():
                np.copyto(self._shared_values[name], value, casting="no")
            hosts = []
        else:
            # enqueue_copy reads each host array as one block of memory
            hosts = [(name, np.ascontiguousarray(value)) for name, value in checked.items()]
        # The calls below that usually have nothing to do are skipped by their own test
        # here: a call costs microseconds when a batch-1 run follows a pause.
        if direct:
            if not shared.direct:
                shared.point(True, self.value_buffer)
            self._input_set = _SHARED
        else:
            if shared is not None:
                shared.point(False, self.value_buffer)
            self._point_inputs(inputs)
        if self._state_version != self.backend.state_version:
            self._refresh_state_args()
        if self._dynamic:
            self._set_dynamic_args(step, first_example)
        out: dict[str, np.ndarray] = {}
        queue = self.backend.queue
        doing = "writing the inputs"
        k = 0
        try:
            for name, host in hosts:
                cl.enqueue_copy(queue, self.value_buffer(name), host, is_blocking=False)
            if self._scalar_count:
                doing = "writing the optimizers' per-step scalars"
                self._write_scalars(cl, step, learning_rate, momentum)
            if self.prepare:
                doing = "computing the layers' constants from the weights (folded batch norms)"
                self._run_prepare(cl, queue)
            if self._writes_state:
                self.backend.weights_version += 1  # this run changes them
            uploads = self._upload(cl, inputs) if inputs is not None else None
            calls = self._calls
            last = None  # the last launch (awaited by polling where it is a chain)
            if calls is not None and not pauses and uploads is None:
                doing = _LAUNCHING  # which launch: worked out from k where one fails
                enqueue = cl.enqueue_nd_range_kernel
                for kernel, global_size, local_size in calls:
                    last = enqueue(queue, kernel, global_size, local_size)
                    k += 1
            else:
                for k, b in enumerate(self.bound):
                    doing = b.doing
                    b.enqueue(cl, queue, uploads if k == 0 else None)
                    if k in pauses:
                        name = pauses[k]
                        doing = f"exchanging '{name}' with the host"
                        self._exchange(cl, queue, name, exchange[name])
            if record is not None:
                doing = "recording the step's loss"
                event = self._record(queue, record, inputs, uploads)
                if queued:
                    self.in_flight.add(event)
                    return out
            doing = "reading the results"
            in_place = []  # the names read once the queue finished (a direct run)
            for name in fetch:
                if name in self.graph.state_map:
                    out[name] = self.backend.enqueue_state_read(name)
                    continue
                if direct and storage.get(name, name) in shared.memory:
                    in_place.append(name)
                    continue
                host = np.empty(self.plan.shape(name), host_dtype(self.graph, name, np.float32))
                cl.enqueue_copy(queue, host, self.value_buffer(name), is_blocking=False)
                out[name] = host
            self.backend.waits += 1
            if last is not None and self._ends_in_chain:
                queue.flush()
                await_chain(last)
            queue.finish()
        except cl.Error as err:
            if doing is _LAUNCHING:
                doing = self._call_doing[k]
            raise _device_error(err, doing, self.backend.device) from None
        for name in in_place:  # copies: the next run overwrites the allocation
            view = self._shared_values.get(name)
            if view is None:  # a value in an output's storage, not the output
                view = shared.view(storage.get(name, name), self.plan.shape(name),
                                   host_dtype(self.graph, name, np.float32))
            out[name] = view.copy()
        del hosts  # the input copies have completed: the host arrays may go
        return out

    def _checked_feeds(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """check_feeds' result: the feeds themselves where each already is an array of its
        input's shape and host dtype, else what check_feeds makes of them (or its error)."""
        types = self._feed_types
        if len(feeds) == len(types):
            exact = {}
            for name, (shape, dtype) in types.items():
                value = feeds.get(name)
                if type(value) is not np.ndarray or value.shape != shape or value.dtype != dtype:
                    break
                exact[name] = value
            else:
                return exact
        return check_feeds(self.graph, self.batch, feeds, np.float32)

    def _run_prepare(self, cl: Any, queue: Any) -> None:
        """Enqueue the hoisted launches if the weights changed since they last ran (they read
        only state, so they need not wait for this run's inputs)."""
        version = self.backend.weights_version
        if not self.prepare or self._prepared == version:
            return
        for b in self.prepare:
            b.enqueue(cl, queue)
        self._prepared = version
        self.prepare_runs += 1

    # ---------------------------------------------------------------- queued steps

    def _check_record(self, record: Record) -> None:
        for name in record:
            if name not in self.graph.node_map:
                raise InternalError(f"'{name}' is not a value of graph '{self.graph.name}'")
        if record.target not in self.plan.kept:
            raise InternalError(f"the target '{record.target}' is not kept after the run of "
                                f"'{self.graph.name}' (compile with keep=['{record.target}'])")

    def _inputs(self) -> QueuedInputs:
        if self._queued_inputs is None:
            self._queued_inputs = QueuedInputs(self.backend, {
                name: (self.plan.shape(name), host_dtype(self.graph, name, np.float32))
                for name in self.graph.inputs})
        return self._queued_inputs

    def _upload(self, cl: Any, inputs: InputSet) -> list[Any] | None:
        """Enqueue the input set's uploads on the upload queue, started at once; their events
        for the run's first launch to wait for (None on the compute queue)."""
        upload = self.backend.upload_queue()
        events = [cl.enqueue_copy(upload, inputs.device[name], host, is_blocking=False)
                  for name, host in inputs.host.items()]
        inputs.uploads = events  # not dropped here: that would wait for them (InputSet)
        if upload is self.backend.queue:
            return None  # one in-order queue: the launches follow the copies anyway
        upload.flush()
        return events

    def _record(self, queue: Any, record: Record, inputs: InputSet | None,
                uploads: Sequence[Any] | None) -> Any:
        """Enqueue the kernel that keeps the run's loss and right predictions on the device."""
        shape = self.plan.shape(record.prediction)
        rows = shape[0]
        cols = math.prod(shape[1:])
        sparse = self.graph.dtype_of(record.target) == "int32"
        target = (self.value_buffer(record.target) if inputs is None
                  else inputs.device[record.target])
        return self.backend.step_figures().record(
            queue, self.value_buffer(record.loss), self.value_buffer(record.prediction),
            target, rows, cols, sparse, wait_for=uploads if not self.bound else None)

    # ---------------------------------------------------------------- exchanges

    def _pauses(self, exchange: Exchange) -> dict[int, str]:
        """For each value to exchange, the index of its node's last launch."""
        check_exchange(self.graph, exchange)
        last = {b.node: k for k, b in enumerate(self.bound)}
        missing = [name for name in exchange if name not in last]
        if missing:
            raise InternalError(f"'{missing[0]}' cannot be exchanged: its node launches no kernel "
                                "(a view or an input)")
        return {last[name]: name for name in exchange}

    def _exchange(self, cl: Any, queue: Any, name: str, replace: Any) -> None:
        """Read the value (the queue is in order: its node has finished), let the host replace
        it, write it back before any later launch reads it."""
        host = np.empty(self.plan.shape(name), host_dtype(self.graph, name, np.float32))
        buf = self.value_buffer(name)
        cl.enqueue_copy(queue, host, buf, is_blocking=True)
        new = np.ascontiguousarray(replace(host), dtype=host.dtype)
        if new.shape != host.shape:
            raise InternalError(f"the exchange of '{name}' returned shape {new.shape}, "
                                f"not {host.shape}")
        cl.enqueue_copy(queue, buf, new, is_blocking=True)
