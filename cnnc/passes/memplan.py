"""Memory planning: every intermediate tensor gets an offset in an arena, reusing dead memory.

Runs after scheduling. A tensor (a node's value, a value fed from the host, a kernel's workspace)
is live from the step that writes it to the last step that reads it, inclusive; a fed value from
before the first step, a kept value (fetched outputs) to after the last. Tensors whose lifetimes
overlap must not share bytes; others may. Offsets are placed greedily, largest tensor first, at
the lowest aligned offset free for the whole lifetime (the arena planners of TFLite and XLA work
this way). A device allocates buffers of at most a certain size (CL_DEVICE_MAX_MEM_ALLOC_SIZE, a
quarter of the memory on NVIDIA's drivers), so with `max_arena` a tensor that would end past it
goes into the first later arena where it fits, or a new one: the plan is one arena when it can
be, several buffers when it must. `verify_plan` checks the result pairwise, independently of how
it was made.

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
    kind: str = "value"  # 'value' | 'input' | 'workspace' | 'constant'

    def overlaps(self, other: Tensor) -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True)
class MemoryPlan:
    tensors: tuple[Tensor, ...]
    offsets: Mapping[str, int]  # within the tensor's arena
    peak: int  # bytes of all the arenas together
    alignment: int
    storage: Mapping[str, str] = field(default_factory=dict)  # value -> the tensor it lives in
    arenas: Mapping[str, int] = field(default_factory=dict)  # tensor -> its arena (default 0)
    arena_sizes: tuple[int, ...] = ()  # bytes of each arena; () means one arena of `peak`

    @property
    def sizes(self) -> tuple[int, ...]:
        """Bytes of each arena (one buffer each)."""
        return self.arena_sizes or (self.peak,)

    def arena_of(self, tensor: str) -> int:
        return self.arenas.get(tensor, 0)

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
    persistent: Sequence[str] = (),
) -> tuple[list[Tensor], dict[str, str]]:
    """The tensors to place, and for every value the tensor that holds it.

    sizes: bytes of every value the schedule produces or feeds (state is not planned).
    views: value -> the value whose storage it shares. workspaces: node -> bytes of each of its
    scratch buffers. keep: values that must survive the whole run (fetched, outputs).
    persistent: workspaces (by workspace_name) that hold their values from one run to the next
    (computed from the weights once, not in every run): live from before the first step to
    after the last, so no tensor ever shares their bytes.
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
    kept = set(persistent)
    for name, sizes_ in workspaces.items():
        i = sched.position[name]
        for k, nbytes in enumerate(sizes_):
            work = workspace_name(name, k)
            if work in kept:
                tensors.append(Tensor(work, nbytes, BEFORE_FIRST, end_of_run, "constant"))
            else:
                tensors.append(Tensor(work, nbytes, i, i, "workspace"))
    return tensors, storage


def plan_memory(
    tensors: Sequence[Tensor],
    alignment: int,
    storage: Mapping[str, str] | None = None,
    max_arena: int | None = None,
) -> MemoryPlan:
    """Offsets for every tensor: largest first, each at the lowest aligned free offset of the
    first arena where it ends within `max_arena` bytes (no limit: one arena)."""
    order = sorted(tensors, key=lambda t: (-t.nbytes, t.start, t.name))
    placed: list[list[tuple[int, int, Tensor]]] = []  # per arena: (offset, end offset, tensor)
    offsets: dict[str, int] = {}
    arenas: dict[str, int] = {}
    for t in order:
        size = round_up(max(t.nbytes, 1), alignment)
        if max_arena is not None and size > max_arena:
            raise VerifyError(
                f"memory plan: '{t.name}' ({t.nbytes} bytes) is larger than an arena may be "
                f"({max_arena} bytes)"
            )
        for index in range(len(placed) + 1):
            if index == len(placed):
                placed.append([])
            offset = _lowest_free(placed[index], t, size, alignment)
            if max_arena is None or offset + size <= max_arena:
                break
        offsets[t.name] = offset
        arenas[t.name] = index
        placed[index].append((offset, offset + size, t))
    sizes = tuple(max((hi for _, hi, _ in arena), default=0) for arena in placed)
    return MemoryPlan(
        tuple(tensors),
        offsets,
        sum(sizes),
        alignment,
        dict(storage or {}),
        arenas,
        sizes if len(sizes) > 1 else (),
    )


def _lowest_free(
    placed: Sequence[tuple[int, int, Tensor]], t: Tensor, size: int, alignment: int
) -> int:
    """The lowest aligned offset where `size` bytes are free for `t`'s whole lifetime."""
    busy = sorted((lo, hi) for lo, hi, other in placed if other.overlaps(t))
    offset = 0
    for lo, hi in busy:
        if offset + size <= lo:
            break
        offset = max(offset, round_up(hi, alignment))
    return offset


def verify_plan(plan: MemoryPlan, max_arena: int | None = None) -> None:
    """No two tensors of one arena that are live at the same step share a byte; offsets are
    aligned; every tensor lies within its arena, and every arena within `max_arena` bytes."""
    sizes = plan.sizes
    if sum(sizes) != plan.peak:
        raise VerifyError(f"memory plan: arenas of {sizes} bytes do not add up to {plan.peak}")
    for i, size in enumerate(sizes):
        if max_arena is not None and size > max_arena:
            raise VerifyError(
                f"memory plan: arena {i} has {size} bytes, more than the {max_arena} allowed"
            )
    ts = sorted(plan.tensors, key=lambda t: t.start)
    for t in ts:
        off = plan.offsets[t.name]
        arena = plan.arena_of(t.name)
        if off % plan.alignment:
            raise VerifyError(
                f"memory plan: '{t.name}' at offset {off} is not aligned to {plan.alignment} bytes"
            )
        if not 0 <= arena < len(sizes):
            raise VerifyError(f"memory plan: '{t.name}' is in arena {arena}, which is not there")
        if off + t.nbytes > sizes[arena]:
            raise VerifyError(
                f"memory plan: '{t.name}' ends past the arena (arena {arena}: {sizes[arena]} "
                "bytes)"
            )
    for i, a in enumerate(ts):
        a_lo = plan.offsets[a.name]
        a_hi = a_lo + a.nbytes
        for b in ts[i + 1 :]:
            if b.start > a.end:
                break  # sorted by start: no later tensor overlaps a in time
            if plan.arena_of(a.name) != plan.arena_of(b.name):
                continue
            b_lo = plan.offsets[b.name]
            if a_lo < b_lo + b.nbytes and b_lo < a_hi:
                raise VerifyError(
                    f"memory plan: '{a.name}' (steps {a.start}..{a.end}, bytes {a_lo}..{a_hi}) "
                    f"and '{b.name}' (steps {b.start}..{b.end}, bytes {b_lo}.."
                    f"{b_lo + b.nbytes}) are live together and share memory"
                )
