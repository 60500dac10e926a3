"""From a graph to what the OpenCL runtime enqueues: schedule, bindings and memory plan.

Nothing here touches a device (only its description, `Target`, with its limits), so `cnnc
compile --plan` shows exactly what a run would launch and allocate, and tests can check the plan
without OpenCL. Launches that compute only from the weights (`Launch.once`: a folded batch norm's
kernel, a Winograd filter transform) are hoisted out of the run of a graph that writes no state:
the runtime runs them once per change of the weights, and their workspaces keep their values
between runs. The plan refuses, with the figures, what the device or the kernels could not run:
a tensor beyond the kernels' 32-bit indices or larger than one buffer may be, a launch outside
the device's work-group or grid limits (target.py). The memory plan is split into as many
buffers as the device's largest allocation requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

from cnnc.backends.opencl.bind import bind_node
from cnnc.backends.opencl.launches import (
    BindContext,
    Float,
    Int,
    Launch,
    NodeBinding,
    Null,
    UInt,
    Value,
    Workspace,
    Zeros,
    check_launch,
    check_scalar,
)
from cnnc.backends.opencl.target import (
    UNLIMITED,
    Limits,
    Target,
    check_tensor,
    largest_batch,
)
from cnnc.errors import InternalError
from cnnc.ir.graph import Graph
from cnnc.passes.memplan import (
    MemoryPlan,
    lifetimes,
    plan_memory,
    verify_plan,
    workspace_name,
)
from cnnc.passes.schedule import Schedule, check_schedule, schedule

ITEMSIZE = 4  # float32 and int32


def mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:.2f} MiB"


def _dims(sizes: tuple[int, ...] | None) -> str:
    return "auto" if sizes is None else "x".join(str(s) for s in sizes)


@dataclass(frozen=True)
class ExecutionPlan:
    graph: Graph
    batch: int
    schedule: Schedule
    bindings: dict[str, NodeBinding]
    memory: MemoryPlan
    kept: frozenset[str]  # values that survive the run and can be fetched
    hoisted: bool = False  # the `once` launches run once per change of the weights
    serial: bool = False  # bound for chains (BindContext.serial): the executable makes them

    def launches(self) -> Iterable[tuple[str, Launch]]:
        """(node name, launch) in schedule order, the hoisted ones included."""
        for name in self.schedule:
            for lau in self.bindings[name].launches:
                yield name, lau

    def hoists(self, lau: Launch) -> bool:
        """Whether `lau` runs once per change of the weights rather than in every run."""
        return self.hoisted and lau.once

    @property
    def zeros(self) -> int:
        return max((b.zeros for b in self.bindings.values()), default=0)

    def shape(self, value: str) -> tuple[int, ...]:
        return self.graph.concrete_shape(value, self.batch)

    def _place(self, tensor: str) -> str:
        """'@0x1000', or '@1:0x1000' (arena 1) when the plan has several buffers."""
        memory = self.memory
        arena = f"{memory.arena_of(tensor)}:" if len(memory.sizes) > 1 else ""
        return f"@{arena}{memory.offsets[tensor]:#x}"

    def _buffer(self, node: str, arg) -> str | None:
        """Where a launch argument lives ('conv2d @0x1000'); None for scalars."""
        if isinstance(arg, Value):
            if arg.name in self.graph.state_map:
                return f"{arg.name} state"
            return f"{arg.name} {self._place(self.memory.storage.get(arg.name, arg.name))}"
        if isinstance(arg, Workspace):
            name = workspace_name(node, arg.index)
            return f"{name} {self._place(name)}"
        if isinstance(arg, Zeros):
            return "zeros"
        return None

    def describe_launches(self, variants: Mapping[str, str] | None = None) -> list[str]:
        """One line per launch (`cnnc compile --plan`): step, node, kernel, global/local
        sizes, and where each buffer argument lives; `variants` (node -> words) adds, above a
        node's launches, the kernel variant it runs (tuned or default)."""
        lines = []
        for i, name in enumerate(self.schedule):
            binding = self.bindings[name]
            if variants and name in variants and binding.launches:
                lines.append(f"{i:4d}  {name}  variant: {variants[name]}")
            if binding.fed:
                where = self._place(self.memory.storage.get(name, name))
                lines.append(f"{i:4d}  {name}  <- written by the host {where}")
            elif binding.view_of is not None:
                op = self.graph.node(name).op
                lines.append(f"{i:4d}  {name}  = view of {binding.view_of} ({op}, no launch)")
            for lau in binding.launches:
                buffers = [self._buffer(name, arg) for arg in lau.args]
                once = "  (once per weights)" if self.hoists(lau) else ""
                lines.append(
                    f"{i:4d}  {name}  {lau.file}:{lau.kernel}  global={_dims(lau.global_size)}"
                    f" local={_dims(lau.local_size)}  [{', '.join(b for b in buffers if b)}]"
                    f"{once}"
                )
        return lines

    def describe_memory(self) -> list[str]:
        """The memory plan, one line per tensor, and the totals (`cnnc compile --plan`)."""
        memory = self.memory
        lines = ["tensor                                          bytes      offset   live steps"]
        ordered = sorted(
            memory.tensors,
            key=lambda t: (memory.arena_of(t.name), memory.offsets[t.name], t.start),
        )
        for t in ordered:
            off = memory.offsets[t.name]
            # Earlier tensors whose bytes this one takes over; name the one that died last.
            shared = sorted(
                (
                    o
                    for o in memory.tensors
                    if o is not t
                    and memory.arena_of(o.name) == memory.arena_of(t.name)
                    and not o.overlaps(t)
                    and memory.offsets[o.name] < off + t.nbytes
                    and off < memory.offsets[o.name] + o.nbytes
                    and o.start < t.start
                ),
                key=lambda o: -o.end,
            )
            reuse = f"  reuses {shared[0].name}" if shared else ""
            end = "end" if t.end >= len(self.schedule) else str(t.end)
            start = "host" if t.start < 0 else str(t.start)
            place = self._place(t.name)[1:]
            lines.append(f"{t.name:44s} {t.nbytes:>10,d}  {place:>10s}   {start}..{end}{reuse}")
        state = sum(s.size * ITEMSIZE for s in self.graph.state)
        lines.append("")
        lines.append(
            f"planned peak device memory: {mib(memory.peak)} for {len(memory.tensors)} "
            f"tensors; one buffer per tensor would take {mib(memory.naive)} "
            f"({100 * (1 - memory.peak / max(memory.naive, 1)):.0f}% saved)"
        )
        if len(memory.sizes) > 1:
            parts = ", ".join(mib(size) for size in memory.sizes)
            lines.append(
                f"in {len(memory.sizes)} buffers (each within the device's largest allocation): "
                f"{parts}"
            )
        lines.append(
            f"state (parameters, statistics, optimizer slots): {mib(state)}, kept across runs"
        )
        return lines


def make_plan(
    graph: Graph,
    batch: int,
    target: Target,
    *,
    alignment: int = 128,
    keep: Iterable[str] = (),
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    serial: bool = False,
) -> ExecutionPlan:
    """Schedule the graph, bind every node, and plan the memory of every intermediate.

    keep: values that must stay readable after the run besides the graph's outputs ('*' keeps
    every value, for per-node comparisons). variants: kernel variants by node name
    (BindContext.variants); none: every node gets the defaults. serial: the launches will run
    in chains (BindContext.serial).
    """
    keep = set(keep)
    if "*" in keep:
        keep = {n.name for n in graph.nodes if n.shape is not None}
    keep |= {o for o in graph.outputs if o in graph.node_map}
    sched = schedule(graph)
    check_schedule(sched)
    ctx = BindContext(graph, batch, target, variants or {}, serial)
    bindings = {name: bind_node(graph.node(name), ctx) for name in sched}
    views = {name: b.view_of for name, b in bindings.items() if b.view_of is not None}
    sizes = {n.name: ITEMSIZE * ctx.numel(n.name) for n in graph.nodes if n.shape is not None}
    workspaces = {
        name: tuple(ITEMSIZE * n for n in b.workspaces)
        for name, b in bindings.items()
        if b.workspaces
    }
    limits = target.limits
    _check_tensors(ctx, sizes, bindings, limits)
    for name in sched:
        for lau in bindings[name].launches:
            _check_launch(name, lau, limits)
            if lau.once:
                _check_once(graph, name, lau, bindings[name])
    # A graph that writes state (a training step) runs every launch every run: its weights
    # change within the run.
    hoisted = not any(node.opdef.mutates for node in graph.nodes)
    persistent = sorted(
        workspace_name(name, k) for name, b in bindings.items() for k in b.constants
    ) if hoisted else []
    tensors, storage = lifetimes(
        sched, sizes, views=views, workspaces=workspaces, keep=sorted(keep),
        persistent=persistent,
    )
    max_arena = None
    if limits.max_allocation < UNLIMITED:
        max_arena = limits.max_allocation // alignment * alignment
    memory = plan_memory(tensors, alignment, storage, max_arena)
    verify_plan(memory, max_arena)
    return ExecutionPlan(graph, batch, sched, bindings, memory, frozenset(keep), hoisted, serial)


# What a `once` launch may read besides state and its node's constant workspaces.
_CONSTANT_ARGS = (Int, UInt, Float, Null, Zeros)


def _check_once(graph: Graph, node: str, lau: Launch, binding: NodeBinding) -> None:
    """A `once` launch reads nothing a run changes: state tensors, the node's constant
    workspaces, scalars fixed at binding."""
    for arg in lau.args:
        if isinstance(arg, Value) and arg.name in graph.state_map:
            continue
        if isinstance(arg, Workspace) and arg.index in binding.constants:
            continue
        if isinstance(arg, _CONSTANT_ARGS):
            continue
        raise InternalError(
            f"node '{node}' ({lau.file}:{lau.kernel}) is marked to run once per change of the "
            f"weights but takes {arg!r}, which is not state or one of its constant workspaces"
        )


def _check_tensors(
    ctx: BindContext, sizes: dict[str, int], bindings: dict[str, NodeBinding], limits: Limits
) -> None:
    """Every state tensor, value and workspace within the kernels' indices and one buffer; a
    refusal of one that grows with the batch names the largest batch size at which all fit."""
    graph = ctx.graph
    batched: list[tuple[str, tuple[int, ...], int]] = []  # grow with the batch
    fixed: list[tuple[str, tuple[int, ...], int]] = [
        (spec.name, tuple(spec.shape), ITEMSIZE * spec.size) for spec in graph.state
    ]
    for name, nbytes in sizes.items():
        shape = graph.shape_of(name)
        grows = bool(shape) and shape[0] is None
        (batched if grows else fixed).append((name, ctx.shape(name), nbytes))
    for name, binding in bindings.items():
        for i, floats in enumerate(binding.workspaces):
            # Scratch buffers mostly grow with the batch (im2col windows, partial sums).
            what = f"{workspace_name(name, i)} (scratch of node '{name}')"
            batched.append((what, (floats,), ITEMSIZE * floats))
    zeros = max((b.zeros for b in bindings.values()), default=0)
    fixed.append(("zeros (padding taps)", (zeros,), ITEMSIZE * zeros))
    for name, shape, nbytes in fixed:
        check_tensor(name, shape, nbytes, limits)
    fits = min(
        (largest_batch(prod(shape), nbytes, ctx.batch, limits) for _, shape, nbytes in batched),
        default=None,
    )
    for name, shape, nbytes in batched:
        check_tensor(name, shape, nbytes, limits, batch_that_fits=fits or None)


def _check_launch(node: str, lau: Launch, limits: Limits) -> None:
    check_launch(node, lau, limits)
    for arg in lau.args:
        if type(arg) in (Int, UInt):
            check_scalar(node, lau, arg.value, unsigned=isinstance(arg, UInt))
