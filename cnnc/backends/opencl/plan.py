"""From a graph to what the OpenCL runtime enqueues: schedule, bindings and memory plan.

Nothing here touches a device (only its description, `Target`), so `cnnc compile --plan` shows
exactly what a run would launch and allocate, and tests can check the plan without OpenCL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cnnc.backends.opencl.bind import bind_node
from cnnc.backends.opencl.launches import BindContext, Launch, NodeBinding, Value, Workspace, Zeros
from cnnc.backends.opencl.tiling import Target
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

    def launches(self) -> Iterable[tuple[str, Launch]]:
        """(node name, launch) in enqueue order."""
        for name in self.schedule:
            for lau in self.bindings[name].launches:
                yield name, lau

    @property
    def zeros(self) -> int:
        return max((b.zeros for b in self.bindings.values()), default=0)

    def shape(self, value: str) -> tuple[int, ...]:
        return self.graph.concrete_shape(value, self.batch)

    def _buffer(self, node: str, arg) -> str | None:
        """Where a launch argument lives ('conv2d @0x1000'); None for scalars."""
        if isinstance(arg, Value):
            if arg.name in self.graph.state_map:
                return f"{arg.name} state"
            return f"{arg.name} @{self.memory.offset_of(arg.name):#x}"
        if isinstance(arg, Workspace):
            name = workspace_name(node, arg.index)
            return f"{name} @{self.memory.offsets[name]:#x}"
        if isinstance(arg, Zeros):
            return "zeros"
        return None

    def describe_launches(self) -> list[str]:
        """One line per launch (`cnnc compile --plan`): step, node, kernel, global/local
        sizes, and where each buffer argument lives."""
        lines = []
        for i, name in enumerate(self.schedule):
            binding = self.bindings[name]
            if binding.fed:
                where = self.memory.offset_of(name)
                lines.append(f"{i:4d}  {name}  <- written by the host @{where:#x}")
            elif binding.view_of is not None:
                op = self.graph.node(name).op
                lines.append(f"{i:4d}  {name}  = view of {binding.view_of} ({op}, no launch)")
            for lau in binding.launches:
                buffers = [self._buffer(name, arg) for arg in lau.args]
                lines.append(
                    f"{i:4d}  {name}  {lau.file}:{lau.kernel}  global={_dims(lau.global_size)}"
                    f" local={_dims(lau.local_size)}  [{', '.join(b for b in buffers if b)}]"
                )
        return lines

    def describe_memory(self) -> list[str]:
        """The memory plan, one line per tensor, and the totals (`cnnc compile --plan`)."""
        memory = self.memory
        lines = ["tensor                                          bytes      offset   live steps"]
        ordered = sorted(memory.tensors, key=lambda t: (memory.offsets[t.name], t.start))
        for t in ordered:
            off = memory.offsets[t.name]
            # Earlier tensors whose bytes this one takes over; name the one that died last.
            shared = sorted(
                (
                    o
                    for o in memory.tensors
                    if o is not t
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
            lines.append(f"{t.name:44s} {t.nbytes:>10,d}  {off:#10x}   {start}..{end}{reuse}")
        state = sum(s.size * ITEMSIZE for s in self.graph.state)
        lines.append("")
        lines.append(
            f"planned peak device memory: {mib(memory.peak)} for {len(memory.tensors)} "
            f"tensors; one buffer per tensor would take {mib(memory.naive)} "
            f"({100 * (1 - memory.peak / max(memory.naive, 1)):.0f}% saved)"
        )
        lines.append(
            f"state (parameters, statistics, optimizer slots): {mib(state)}, kept across runs"
        )
        return lines


def make_plan(
    graph: Graph, batch: int, target: Target, *, alignment: int = 128, keep: Iterable[str] = ()
) -> ExecutionPlan:
    """Schedule the graph, bind every node, and plan the memory of every intermediate.

    keep: values that must stay readable after the run besides the graph's outputs ('*' keeps
    every value, for per-node comparisons).
    """
    keep = set(keep)
    if "*" in keep:
        keep = {n.name for n in graph.nodes if n.shape is not None}
    keep |= {o for o in graph.outputs if o in graph.node_map}
    sched = schedule(graph)
    check_schedule(sched)
    ctx = BindContext(graph, batch, target)
    bindings = {name: bind_node(graph.node(name), ctx) for name in sched}
    views = {name: b.view_of for name, b in bindings.items() if b.view_of is not None}
    sizes = {n.name: ITEMSIZE * ctx.numel(n.name) for n in graph.nodes if n.shape is not None}
    workspaces = {
        name: tuple(ITEMSIZE * n for n in b.workspaces)
        for name, b in bindings.items()
        if b.workspaces
    }
    tensors, storage = lifetimes(
        sched, sizes, views=views, workspaces=workspaces, keep=sorted(keep)
    )
    memory = plan_memory(tensors, alignment, storage)
    verify_plan(memory)
    return ExecutionPlan(graph, batch, sched, bindings, memory, frozenset(keep))
