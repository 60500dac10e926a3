"""Scheduling: the order in which a backend executes a graph's nodes (before memory planning).

The graph's node order is its meaning: a node that reads a state tensor sees the updates that
come before it in that order and not those after. The schedule keeps every data dependency and
every such read/update order on state, and otherwise follows the graph, except that an update
(optimizer step, moving average) runs as soon as its inputs are ready and every earlier reader of
the state it writes has run: its gradient then dies early and its memory can be reused.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property

from cnnc.ir.graph import Graph, Node, VerifyError


@dataclass(frozen=True)
class Schedule:
    graph: Graph
    order: tuple[str, ...]  # node names in execution order

    @cached_property
    def position(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.order)}

    @cached_property
    def last_use(self) -> dict[str, int]:
        """For each value read by some node, the position of its last reader."""
        out: dict[str, int] = {}
        for i, name in enumerate(self.order):
            for v in self.graph.node(name).operands:
                out[v] = i
        return out

    @cached_property
    def frees(self) -> tuple[tuple[str, ...], ...]:
        """For each position, the values that die there: read for the last time (the
        `last_use`), or produced and never read. Both backends' memory follows this."""
        dies: dict[str, int] = {}
        for i, name in enumerate(self.order):
            if self.graph.node(name).shape is not None:
                dies[name] = self.last_use.get(name, i)
        out: list[list[str]] = [[] for _ in self.order]
        for value, i in dies.items():
            out[max(i, self.position[value])].append(value)
        return tuple(tuple(v) for v in out)

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def mutated(node: Node) -> list[str]:
    """The state tensors an update node writes (sgd without momentum has no velocity)."""
    return [node.operands[i] for i in node.opdef.mutates if i < len(node.operands)]


def _dependencies(graph: Graph) -> dict[str, set[str]]:
    """For each node, the nodes that must run before it."""
    deps: dict[str, set[str]] = {n.name: set() for n in graph.nodes}
    readers: dict[str, list[str]] = {}  # state name -> readers since its last update
    last_update: dict[str, str] = {}  # state name -> the latest update node writing it
    for node in graph.nodes:
        mine = deps[node.name]
        for v in node.operands:
            if v in graph.node_map:
                mine.add(v)
        written = set(mutated(node))
        for v in node.operands:
            if v in graph.state_map:
                if v in last_update:  # read after write: see the update
                    mine.add(last_update[v])
                if v not in written:
                    readers.setdefault(v, []).append(node.name)
        for v in written:
            mine.update(r for r in readers.get(v, ()) if r != node.name)  # write after read
            readers[v] = []
            last_update[v] = node.name
    return deps


def schedule(graph: Graph) -> Schedule:
    """A valid execution order: graph order, with updates hoisted to the earliest legal point."""
    deps = _dependencies(graph)
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    waiting = {name: len(d) for name, d in deps.items()}
    users: dict[str, list[str]] = {name: [] for name in deps}
    for name, d in deps.items():
        for before in d:
            users[before].append(name)

    def priority(name: str) -> tuple[int, int]:
        is_update = graph.node(name).opdef.group == "update"
        return (0 if is_update else 1, index[name])

    ready = [priority(n) + (n,) for n, k in waiting.items() if k == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        *_, name = heapq.heappop(ready)
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, priority(user) + (user,))
    if len(order) != len(graph.nodes):
        stuck = sorted(n for n, k in waiting.items() if k > 0)
        raise VerifyError(
            f"graph '{graph.name}' cannot be scheduled: a dependency cycle "
            f"through {', '.join(stuck[:5])}"
        )
    return Schedule(graph, tuple(order))


def check_schedule(sched: Schedule) -> None:
    """Verify the order keeps every dependency of the graph (raises VerifyError)."""
    deps = _dependencies(sched.graph)
    pos = sched.position
    if sorted(pos) != sorted(n.name for n in sched.graph.nodes):
        raise VerifyError("the schedule does not run every node of the graph exactly once")
    for name, before in deps.items():
        for b in before:
            if pos[b] >= pos[name]:
                raise VerifyError(f"the schedule runs '{name}' before '{b}', which it depends on")
