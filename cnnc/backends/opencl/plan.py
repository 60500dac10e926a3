"""From a graph to what the OpenCL runtime enqueues: schedule, bindings and memory plan.

Nothing here touches a device (only its description, `Target`), so `cnnc compile --plan` shows
exactly what a run would launch and allocate, and tests can check the plan without OpenCL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cnnc.backends.opencl.bind import bind_node
from cnnc.backends.opencl.launches import BindContext, Launch, NodeBinding
from cnnc.backends.opencl.tiling import Target
from cnnc.ir.graph import Graph
from cnnc.passes.memplan import MemoryPlan, lifetimes, plan_memory, verify_plan
from cnnc.passes.schedule import Schedule, check_schedule, schedule

ITEMSIZE = 4  # float32 and int32


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
