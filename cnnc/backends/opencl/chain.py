"""One launch for a run of layers on a CPU device: the latency path's answer to pocl's sleeping
worker threads.

At batch 1 a layer is a launch of tens of microseconds. pocl 3.1's CPU device hands a launch's
work-groups to worker threads that sleep on a condition variable once they find nothing to do,
so each launch pays their wake-up and runs part of its time on one core (benchmarks/
pass_timeline.py: fashion-plus's 7 launches took 117 us in the pass against 88 us alone, with
25 us of gaps between them, on a 2-core Intel Xeon). A chain runs consecutive launches of a
pass as one: as many work-groups of one work-item as the device has compute units, each taking
the layers in turn, claiming a layer's work-groups a few at a time with atomic counters and
waiting, once none is left, until every claimed one is done (chain_source;
benchmarks/persistent_launch.py measured the idea on synthetic layers). A work-group that
starts late joins where the others are; one that never starts leaves them all the work: the
wait is only for work a running work-group claimed, so it cannot deadlock on a device that runs
work-groups one after another. GPUs give no such promise about spinning work-groups' progress,
and their launches are cheap: chains are for CPU devices only (OpenCLBackend.chains), for
forward passes of at most MOST_EXAMPLES examples (chains_apply; CNNC_CHAINS=0 turns them off).

Each layer keeps its own kernel source and -D options: it is compiled as a unit of its own
(clCompileProgram), with the kernel turned into a static function whose work-item functions
(get_global_id and the rest) read the ids the chain passes it, and one external entry
`cnnc_chain_link_<i>` taking its arguments as the chain kernel has them (every pointer as
`__global void *`, which C converts to the kernel's own pointer types). The file's other
kernels that no #ifdef leaves out become unused functions of ids too. The units and the chain
kernel are linked into one program (clLinkProgram) and cached on disk like any other program.
A helper function that calls a work-item function cannot see the ids: its unit does not
compile, and that layer runs as a launch of its own (ProgramCache.unchainable), never with the
chain's own ids.

A layer that synchronises its work-items (barrier, local memory) can only be chained where its
work-groups have one work-item (then the barrier has nothing to wait for and its local arrays
are private ones); elsewhere the prelude makes `barrier` and `__local` a compile error, so a
kernel whose helpers synchronise cannot be chained by mistake. A plan made for chains
(BindContext.serial) gives the kernels that synchronise (gemv's split reduction,
dense_softmax's shared logits) one work-item a group where they can.

The host waits for a run that ends in a chain by polling its event (await_chain) rather than
sleeping in clFinish until a worker wakes it.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

from cnnc import settings
from cnnc.backends.opencl.launches import (
    FirstIndex,
    Float,
    Int,
    Launch,
    ScalarsAt,
    Step,
    UInt,
)
from cnnc.errors import InternalError
from cnnc.intmath import ceil_div

# At most this many examples: larger batches' launches are long enough that a launch's fixed
# cost is noise, and their kernels are tuned for pocl's own work-group loops.
MOST_EXAMPLES = 8
# A launch whose work-items need no particular grouping (local size left to the driver) is cut
# into about this many claims per work-group of the chain: fewer claims cost fewer atomic
# operations, more even out the work-groups' shares.
CLAIMS_PER_WORKER = 4
POINTER_BYTES = 8  # what the parameter budget counts for any argument (pointers are widest)
# The host waits for a chain by asking whether it is done, giving its core away between the
# questions (await_chain), for at most this long; then it sleeps until the driver wakes it.
POLL_SECONDS = 0.005
_give_way = getattr(os, "sched_yield", lambda: time.sleep(0))  # (Unix; elsewhere a sleep of 0)

IDS_STRUCT = (
    "typedef struct { uint dim; uint gid[3], lid[3], grp[3], gsz[3], lsz[3], ngr[3]; } "
    "cnnc_chain_ids;\n"
)
_KERNEL = re.compile(r"__kernel\s+void\s+(\w+)\s*\(")
_SYNC = re.compile(r"\bbarrier\s*\(|__local\b|\bwork_group_")


@dataclass(frozen=True)
class Link:
    """One launch of a chain: where its arguments would start among the chain kernel's were
    each a parameter of its own (the budget plan_chains keeps to; route() passes fewer), and
    the (virtual) work-group size the chain runs it with."""

    launch: Launch
    base: int
    local: tuple[int, int, int]

    @property
    def global3(self) -> tuple[int, int, int]:
        g = tuple(self.launch.global_size) + (1,) * (3 - len(self.launch.global_size))
        return g  # type: ignore[return-value]

    @property
    def groups(self) -> tuple[int, int, int]:
        return tuple(g // lo for g, lo in zip(self.global3, self.local, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True)
class Shared:
    """A parameter of the chain kernel that every argument with the same key receives: a
    buffer the runtime binds (and may point elsewhere later), the same for each of them."""

    key: Hashable


@dataclass(frozen=True)
class InArena:
    """A pointer `offset` bytes into a buffer the chain kernel receives once, keyed by `arena`:
    the run's working memory, of which the argument's buffer is a part that never moves."""

    arena: Hashable
    offset: int


Place = Shared | InArena | int  # int: the argument's own value, as a literal of its C type


@dataclass(frozen=True)
class Routes:
    """How a chain's launches receive their arguments: the chain kernel's parameters (their C
    types; the counters follow them), and for each launch, each argument's C expression in the
    call of its entry and the parameter it sets (None: a literal or a pointer into an arena,
    set once when the chain is made), and each arena's parameter (by the arena's key)."""

    params: tuple[str, ...]
    exprs: tuple[tuple[str, ...], ...]
    slots: tuple[tuple[int | None, ...], ...]
    arenas: tuple[tuple[Hashable, int], ...] = ()


def _literal(arg: Any, value: int) -> str:
    """An integer argument as a C literal of its type (a validated Python int, nothing else)."""
    if type(value) is not int:
        raise InternalError(f"a chain's literal must be an integer, not {value!r}")
    if isinstance(arg, UInt) and 0 <= value < 2**32:
        return f"{value}u"
    if isinstance(arg, Int) and -(2**31) <= value < 2**31:
        # -2147483648 would be the negation of a long literal
        return f"({value + 1} - 1)" if value == -(2**31) else f"({value})"
    raise InternalError(f"a chain cannot pass {value!r} as a literal for {arg!r}")


def route(links: Sequence[Link], place: Callable[[int, int, Any], Place] | None = None
          ) -> Routes:
    """The chain's parameters and each launch's arguments, from `place(link index, argument
    index, argument)`. Without `place`, one parameter per argument (what each launch passes).

    Each parameter is work for the driver at every launch: pocl's clEnqueueNDRangeKernel took
    7.3 us of the host's time with 1 argument, 13 us with 106 arguments all the same buffer, 20
    us with 106 distinct ones (it tracks each buffer), on the Intel Xeon; fashion-best's chain
    passed 105 arguments, 50 of them parts of the one arena."""
    params: list[str] = []
    index: dict[Hashable, int] = {}
    arenas: dict[Hashable, int] = {}
    exprs: list[tuple[str, ...]] = []
    slots: list[tuple[int | None, ...]] = []

    def param(key: Hashable, c_type: str) -> int:
        if key not in index:
            index[key] = len(params)
            params.append(c_type)
        elif params[index[key]] != c_type:
            raise InternalError(f"chain parameter {key!r} is passed as {params[index[key]]} "
                                f"and as {c_type}")
        return index[key]

    for j, link in enumerate(links):
        own_exprs: list[str] = []
        own_slots: list[int | None] = []
        for i, arg in enumerate(link.launch.args):
            where = place(j, i, arg) if place is not None else Shared((j, i))
            if isinstance(where, InArena):
                k = arenas.setdefault(where.arena, param(InArena(where.arena, 0),
                                                         "__global char *"))
                own_exprs.append(f"(__global void *)(p{k} + {int(where.offset)}UL)")
                own_slots.append(None)
            elif isinstance(where, Shared):
                k = param(where.key, _c_type(arg))
                own_exprs.append(f"p{k}")
                own_slots.append(k)
            else:
                own_exprs.append(_literal(arg, where))
                own_slots.append(None)
        exprs.append(tuple(own_exprs))
        slots.append(tuple(own_slots))
    return Routes(tuple(params), tuple(exprs), tuple(slots), tuple(arenas.items()))


def chains_apply(device: Any, graph: Any, batch: int, enabled: bool) -> bool:
    """Whether a pass of `graph` at `batch` on `device` runs in chains: where the backend
    makes them (`enabled`: CPU devices with their own tile choices) and CNNC_CHAINS does not
    say no, at MOST_EXAMPLES or fewer, with more than one compute unit, for a pass that writes
    no state (a training step's launches are long, and its weights change within the run)."""
    return (enabled and settings.chains() and batch <= MOST_EXAMPLES
            and device.compute_units > 1
            and not any(node.opdef.mutates for node in graph.nodes))


def kernel_section(text: str, kernel: str) -> str:
    """The part of a kernel file under `#ifdef <KERNEL>` (program.py's guard), to its #endif;
    the whole file where there is no such guard."""
    lines = text.splitlines()
    guard = f"#ifdef {kernel.upper()}"
    starts = [i for i, line in enumerate(lines) if line.strip() == guard]
    if not starts:
        return text
    depth = 0
    for end in range(starts[0], len(lines)):
        word = lines[end].strip().split(maxsplit=1)[0] if lines[end].strip() else ""
        if word in ("#if", "#ifdef", "#ifndef"):
            depth += 1
        elif word == "#endif":
            depth -= 1
            if depth == 0:
                return "\n".join(lines[starts[0]:end + 1])
    return "\n".join(lines[starts[0]:])


def serial(launch: Launch) -> bool:
    """Whether the launch's work-groups are single work-items."""
    return launch.local_size is not None and prod(launch.local_size) == 1


def chain_local(launch: Launch, workers: int) -> tuple[int, int, int] | None:
    """The work-group size a chain runs the launch with, or None where it cannot: the launch's
    own, or where the driver was to choose, a divisor of its first dimension that gives each of
    the chain's work-groups about CLAIMS_PER_WORKER claims."""
    if len(launch.global_size) > 3:
        return None
    if launch.local_size is not None:
        return tuple(launch.local_size) + (1,) * (3 - len(launch.local_size))  # type: ignore[return-value]
    first = launch.global_size[0]
    most = max(1, -(-first // (CLAIMS_PER_WORKER * workers)))
    size = max(d for d in range(1, most + 1) if first % d == 0)
    return (size, 1, 1)


def chainable(launch: Launch, text: str, workers: int) -> bool:
    """Whether a launch can run inside a chain: its work-items never wait for each other (or
    there is one a work-group), and it has a work-group size the chain can run."""
    if chain_local(launch, workers) is None:
        return False
    return serial(launch) or not _SYNC.search(kernel_section(text, launch.kernel))


def _c_type(arg: Any) -> str:
    if isinstance(arg, (Int, ScalarsAt)):
        return "int"
    if isinstance(arg, (UInt, Step, FirstIndex)):
        return "uint"
    if isinstance(arg, Float):
        return "float"
    return "__global void *"


def unit_source(text: str, link: Link, index: int) -> str:
    """The compile unit of one layer: a prelude that makes its kernel a static function of the
    chain's ids, the kernel file, and its external entry."""
    lau = link.launch
    # The file's other kernels (those no #ifdef leaves out) become unused functions of ids too.
    others = "".join(
        f"#define {name}(...) cnnc_chain_unused_{name}("
        "const __private cnnc_chain_ids *restrict cnnc_ids_, __VA_ARGS__)\n"
        for name in dict.fromkeys(_KERNEL.findall(text)) if name != lau.kernel)
    sync = ("#define barrier(flags) ((void)0)\n#define __local\n" if serial(lau) else
            "#define barrier(flags) cnnc_chain_cannot_wait_for_work_items\n"
            "#define __local cnnc_chain_cannot_share_local_memory\n")
    prelude = (
        f"/* cnnc chain, layer {index}: {lau.file}:{lau.kernel} */\n"
        + IDS_STRUCT
        + "#define __kernel static inline\n"
        "#define get_work_dim() (cnnc_ids_->dim)\n"
        "#define get_global_id(d) ((size_t)cnnc_ids_->gid[(d)])\n"
        "#define get_local_id(d) ((size_t)cnnc_ids_->lid[(d)])\n"
        "#define get_group_id(d) ((size_t)cnnc_ids_->grp[(d)])\n"
        "#define get_global_size(d) ((size_t)cnnc_ids_->gsz[(d)])\n"
        "#define get_local_size(d) ((size_t)cnnc_ids_->lsz[(d)])\n"
        "#define get_enqueued_local_size(d) ((size_t)cnnc_ids_->lsz[(d)])\n"
        "#define get_num_groups(d) ((size_t)cnnc_ids_->ngr[(d)])\n"
        "#define get_global_offset(d) ((size_t)0)\n"
        + sync
        + others
        + f"#define {lau.kernel} cnnc_chain_layer\n"
        "#define cnnc_chain_layer(...) "
        "cnnc_chain_body(const __private cnnc_chain_ids *restrict cnnc_ids_, __VA_ARGS__)\n"
        "#line 1\n"
    )
    params = ", ".join(f"{_c_type(a)} a{i}" for i, a in enumerate(lau.args))
    names = ", ".join(f"a{i}" for i in range(len(lau.args)))
    entry = (
        f"\nvoid cnnc_chain_link_{index}(const __private cnnc_chain_ids *restrict ids, {params})\n"
        f"{{\n    cnnc_chain_body(ids, {names});\n}}\n"
    )
    return prelude + text + entry


def claim_size(groups: int, workers: int) -> int:
    """How many of a layer's work-groups a claim takes. Every claim and every report of work
    done is an atomic operation on a cache line the workers share (~0.1-0.2 us as it moves
    between cores): a claim a work-group made a winograd_gemm of 112 work-groups of 4
    work-items 1.16x slower than its own launch. So claims are few, at least CLAIMS_PER_WORKER
    a worker where there are work-groups enough (one that starts late then finds work left),
    and of the size that leaves the busiest worker the fewest work-groups; of sizes as good,
    the largest. (Claims of work-items rather than work-groups, which would split seven
    work-groups evenly, made fashion-best's and the seed model's batch-1 passes 1.13-1.18x
    slower on the Intel Xeon: a work-group's work-items share their inputs in the cache.)"""
    least = workers * min(CLAIMS_PER_WORKER, max(1, groups // workers))
    most = max(1, groups // least)
    return min(range(1, most + 1),
               key=lambda size: (ceil_div(ceil_div(groups, size), workers) * size, -size))


def chain_source(links: Sequence[Link], workers: int, routes: Routes | None = None) -> str:
    """The chain kernel. Each layer's work-groups are cut into claims (claim_size), the claims
    (where each worker has CLAIMS_PER_WORKER or more) into `workers` ranges of consecutive
    ones: work-group w of the chain takes the claims of range w first, in order, then what is
    left of the others' (a worker that starts late, or never, leaves its range to the others;
    any number of work-groups computes the same). Fewer claims form one queue. Then each
    work-group waits until every work-group of the layer is done. The counters (counters()): per
    layer, each range's next claim and the layer's work-groups done; zeroed by the last of the
    chain's work-groups to leave.

    Ranges rather than one queue of claims: a worker then takes the same part of each layer,
    mostly the rows it wrote in the layer before, still in its own caches. `routes`: how the
    launches receive their arguments (route(); by default a parameter each)."""
    routes = route(links) if routes is None else routes
    out = [IDS_STRUCT]
    for j, link in enumerate(links):
        types = [_c_type(a) for a in link.launch.args]
        out.append(f"void cnnc_chain_link_{j}(const __private cnnc_chain_ids *restrict, "
                   f"{', '.join(types)});\n")
    params = [f"{t} p{k}" for k, t in enumerate(routes.params)]
    params.append("__global volatile uint *restrict counts")
    out.append("\n__kernel void cnnc_chain(" + ", ".join(params) + ")\n{\n")
    out.append("    cnnc_chain_ids ids;\n")
    out.append(f"    const uint own = get_group_id(0) % {workers}u;\n")
    for j, link in enumerate(links):
        lau = link.launch
        g, lo, n = link.global3, link.local, link.groups
        total = prod(n)
        step = claim_size(total, workers)
        claims = ceil_div(total, step)
        # Ranges where each worker has several claims; one queue for a few big claims, where
        # a range of two can hold the two slow ones (fashion-plus's first Winograd layer: 28
        # and 16 us a worker in ranges, 27 and 27 in one queue). fashion-best's batch-1 chain
        # 320 -> 301 us of device time on the Intel Xeon, the seed model's and fashion-plus's
        # within noise.
        ranges = workers if claims >= workers * CLAIMS_PER_WORKER else 1
        args = ", ".join(routes.exprs[j])
        at = (workers + 1) * j  # the layer's counters: a range's next claim each, then done
        done = at + workers
        out.append(f"    /* {lau.file}:{lau.kernel}, {total} work-groups of {lo}, "
                   f"{claims} claims of {step} */\n")
        out.append(f"    ids.dim = {len(lau.global_size)};\n")
        for d in range(3):
            out.append(f"    ids.gsz[{d}] = {g[d]}; ids.lsz[{d}] = {lo[d]}; "
                       f"ids.ngr[{d}] = {n[d]};\n")
        out.append(
            f"    for (uint k = 0; k < {ranges}u; k++) {{\n"
            f"        const uint r = (own + k) % {ranges}u;\n"
            f"        const uint start = r * {claims}u / {ranges}u, "
            f"end = (r + 1) * {claims}u / {ranges}u;\n"
            f"        for (uint c; (c = start + atomic_inc(&counts[{at} + r])) < end;) {{\n"
            f"            const uint c0 = c * {step}u, c1 = min(c0 + {step}u, {total}u);\n"
            f"            for (uint q = c0; q < c1; q++) {{\n"
            f"            ids.grp[0] = q % {n[0]}u; ids.grp[1] = q / {n[0]}u % {n[1]}u; "
            f"ids.grp[2] = q / {n[0] * n[1]}u;\n"
            f"            for (uint z = 0; z < {lo[2]}u; z++)\n"
            f"            for (uint y = 0; y < {lo[1]}u; y++)\n"
            f"            for (uint x = 0; x < {lo[0]}u; x++) {{\n"
            f"                ids.lid[0] = x; ids.lid[1] = y; ids.lid[2] = z;\n"
            f"                ids.gid[0] = ids.grp[0] * {lo[0]}u + x; "
            f"ids.gid[1] = ids.grp[1] * {lo[1]}u + y; "
            f"ids.gid[2] = ids.grp[2] * {lo[2]}u + z;\n"
            f"                cnnc_chain_link_{j}(&ids, {args});\n"
            f"            }}\n"
            f"            }}\n"
            f"            atomic_add(&counts[{done}], c1 - c0);\n"
            f"        }}\n"
            f"    }}\n"
            # a plain read to spin on, then one atomic operation: the other work-groups'
            # writes are seen by what follows (x86 orders loads; the operation orders the
            # compiler's)
            f"    while (counts[{done}] < {total}u)\n"
            f"        ;\n"
            f"    atomic_add(&counts[{done}], 0u);\n"
        )
    last = (workers + 1) * len(links)
    out.append(
        f"    if (atomic_inc(&counts[{last}]) == get_num_groups(0) - 1)\n"
        f"        for (int k = 0; k <= {last}; k++)\n"
        f"            counts[k] = 0;\n"
        "}\n"
    )
    return "".join(out)


def await_chain(event: Any, seconds: float = POLL_SECONDS) -> None:
    """Return once `event` (a chain's launch) is no longer queued or running, or after
    `seconds`: the caller's clFinish then finds it done (or reports its error) at once.

    pocl's clFinish puts the host thread to sleep until the worker that ends the launch wakes
    it, and in a virtual machine a sleeping core is one the hypervisor must wake too: 10-17 us
    at the end of each batch-1 pass on the 2-core Intel Xeon, a tenth of fashion-plus's. Asking
    the event's status in a loop keeps the host's core awake instead, and sched_yield between
    the questions gives it to the chain's workers whenever they need it (a loop without it
    took half a core from them: 1.15x slower than clFinish). fashion-plus's batch-1 chain,
    launch and wait, 25 rounds interleaved in one process: 124 us a pass back to back against
    133 with clFinish, 127 against 139 for the 11th pass after a pause."""
    end = time.perf_counter() + seconds
    while event.command_execution_status > 0:  # queued, submitted or running; 0 done, < 0 failed
        if time.perf_counter() > end:
            return
        _give_way()


def counters(links: Sequence[Link], workers: int) -> int:
    """How many uints the chain's counters take (chain_source)."""
    return (workers + 1) * len(links) + 1


def plan_chains(launches: Sequence[Launch], texts: Sequence[str], workers: int,
                parameter_bytes: int, skip: Callable[[Launch], bool] = lambda lau: False,
                ) -> list[tuple[int, list[Link]]]:
    """The chains a run of launches is cut into, each as (the index of its first launch, its
    links): consecutive chainable launches but those `skip` names, each chain within the
    device's budget for kernel arguments; chains of one launch are left out (a launch alone
    is what it already is)."""
    chains: list[tuple[int, list[Link]]] = []
    current: list[Link] = []
    first = 0
    room = parameter_bytes // POINTER_BYTES - 1  # the counters take one

    def close() -> None:
        if len(current) > 1:
            chains.append((first, list(current)))
        current.clear()

    for k, (lau, text) in enumerate(zip(launches, texts, strict=True)):
        local = chain_local(lau, workers)
        if local is None or skip(lau) or not chainable(lau, text, workers):
            close()
            continue
        used = sum(len(link.launch.args) for link in current)
        if used + len(lau.args) > room:
            close()
            used = 0
        if not current:
            first = k
        current.append(Link(lau, used, local))
    close()
    return chains
