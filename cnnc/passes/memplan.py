"""Memory planning: every intermediate tensor gets an offset in one arena, reusing dead memory.

Runs after scheduling. A tensor (a node's value, a value fed from the host, a kernel's workspace)
is live from the step that writes it to the last step that reads it, inclusive; a fed value from
before the first step, a kept value (fetched outputs) to after the last. Tensors whose lifetimes
overlap must not share bytes; others may. Offsets are placed greedily, largest tensor first, at
the lowest aligned offset free for the whole lifetime (the arena planners of TFLite and XLA work
this way). `verify_plan` checks the result pairwise, independently of how it was made.

Views (flatten, reshape, dropout at inference) have no tensor of their own: they are names for
their input's storage, whose lifetime covers every view's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cnnc.intmath import round_up
from cnnc.ir.graph import VerifyError
from cnnc.passes.schedule import Schedule

BEFORE_FIRST = -1  # the step at which fed values are written


@dataclass(frozen=True)
class Tensor:
    """Bytes that must stay intact from step `start` to step `end` (inclusive)."""

    name: str
    nbytes: int
    start: int
    end: int
    kind: str = "value"  # 'value' | 'input' | 'workspace'

    def overlaps(self, other: Tensor) -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True)
class MemoryPlan:
    tensors: tuple[Tensor, ...]
    offsets: Mapping[str, int]
    peak: int  # bytes of the arena
    alignment: int
    storage: Mapping[str, str] = field(default_factory=dict)  # value -> the tensor it lives in

    @property
    def naive(self) -> int:
        """Bytes one buffer per tensor would take (views excluded, every workspace included)."""
        return sum(round_up(t.nbytes, self.alignment) for t in self.tensors)

    def offset_of(self, value: str) -> int:
        return self.offsets[self.storage.get(value, value)]

    def tensor(self, name: str) -> Tensor:
        return next(t for t in self.tensors if t.name == name)


def workspace_name(node: str, index: int) -> str:
    return f"{node}#work{index}"


def lifetimes(
    sched: Schedule,
    sizes: Mapping[str, int],
    *,
    views: Mapping[str, str] = {},
    workspaces: Mapping[str, Sequence[int]] = {},
    keep: Sequence[str] = (),
) -> tuple[list[Tensor], dict[str, str]]:
    """The tensors to place, and for every value the tensor that holds it.

    sizes: bytes of every value the schedule produces or feeds (state is not planned).
    views: value -> the value whose storage it shares. workspaces: node -> bytes of each of its
    scratch buffers. keep: values that must survive the whole run (fetched, outputs).
    """
    graph = sched.graph
    end_of_run = len(sched)

    def root(v: str) -> str:
        seen = set()
        while v in views:
            if v in seen:
                raise VerifyError(f"views form a cycle through '{v}'")
            seen.add(v)
            v = views[v]
        return v

    storage: dict[str, str] = {}
    start: dict[str, int] = {}
    end: dict[str, int] = {}
    kinds: dict[str, str] = {}
    for i, name in enumerate(sched.order):
        node = graph.node(name)
        if node.shape is None:  # updates produce no value
            continue
        r = root(name)
        storage[name] = r
        born = BEFORE_FIRST if node.op == "input" else i
        start[r] = min(start.get(r, born), born)
        last = sched.last_use.get(name, born)
        if name in keep:
            last = end_of_run
        end[r] = max(end.get(r, last), last, born)
        kinds[r] = "input" if graph.node(r).op == "input" else "value"
    tensors = [Tensor(r, sizes[r], start[r], end[r], kinds[r]) for r in start]
    for name, sizes_ in workspaces.items():
        i = sched.position[name]
        for k, nbytes in enumerate(sizes_):
            tensors.append(Tensor(workspace_name(name, k), nbytes, i, i, "workspace"))
    return tensors, storage


def plan_memory(
    tensors: Sequence[Tensor], alignment: int, storage: Mapping[str, str] | None = None
) -> MemoryPlan:
    """Offsets for every tensor: largest first, each at the lowest aligned free offset."""
    order = sorted(tensors, key=lambda t: (-t.nbytes, t.start, t.name))
    placed: list[tuple[int, int, Tensor]] = []  # (offset, end offset, tensor)
    offsets: dict[str, int] = {}
    for t in order:
        size = round_up(max(t.nbytes, 1), alignment)
        busy = sorted((lo, hi) for lo, hi, other in placed if other.overlaps(t))
        offset = 0
        for lo, hi in busy:
            if offset + size <= lo:
                break
            offset = max(offset, round_up(hi, alignment))
        offsets[t.name] = offset
        placed.append((offset, offset + size, t))
    peak = max((hi for _, hi, _ in placed), default=0)
    return MemoryPlan(tuple(tensors), offsets, peak, alignment, dict(storage or {}))


def verify_plan(plan: MemoryPlan) -> None:
    """No two tensors that are live at the same step share a byte; offsets are aligned."""
    ts = sorted(plan.tensors, key=lambda t: t.start)
    for t in ts:
        off = plan.offsets[t.name]
        if off % plan.alignment:
            raise VerifyError(
                f"memory plan: '{t.name}' at offset {off} is not aligned to {plan.alignment} bytes"
            )
        if off + t.nbytes > plan.peak:
            raise VerifyError(f"memory plan: '{t.name}' ends past the arena ({plan.peak} bytes)")
    for i, a in enumerate(ts):
        a_lo = plan.offsets[a.name]
        a_hi = a_lo + a.nbytes
        for b in ts[i + 1 :]:
            if b.start > a.end:
                break  # sorted by start: no later tensor overlaps a in time
            b_lo = plan.offsets[b.name]
            if a_lo < b_lo + b.nbytes and b_lo < a_hi:
                raise VerifyError(
                    f"memory plan: '{a.name}' (steps {a.start}..{a.end}, bytes {a_lo}..{a_hi}) "
                    f"and '{b.name}' (steps {b.start}..{b.end}, bytes {b_lo}.."
                    f"{b_lo + b.nbytes}) are live together and share memory"
                )
