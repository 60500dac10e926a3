"""The tuner: times the admitted kernel variants of a graph's launches and keeps the winners.

For each tunable node (space.py) not yet in the cache, the node runs alone (a one-node graph,
data on the device) under the variants of its space in order, default first, each timed as the
median of a few runs (one, if that one is far slower than the best so far). The search of a
node stops where its measurements are decisive: after PATIENCE variants in a row that gained
nothing, skipping families of variants (an algorithm, a Winograd tile) far slower than the best
or beaten on every earlier node of this run; and when its share of the budget is used (shared in
proportion to the nodes' FLOPs). The nodes are
searched in two passes: first each node's likeliest variants (the default and the next PATIENCE,
built at once), largest node first, then with what is left the searches that pass cut, so a short
budget gives every node its largest gain before any gets the rest; nodes under 0.5% of the
FLOPs come last, with what is left (else they keep the defaults). A search the budget ends with
variants left to time is cached marked cut (with the variants it timed): its best so far is
used, and the next tuning of the graph resumes it in its second pass. The fastest
variant is then timed again beside the default, and it must beat it by MIN_GAIN and pass the
correctness gate (gate.py) to be kept; a variant the gate rejects is never used, and the tuner
says which and why. Nodes with the same cache key share one search. Only the kept variants'
programs are written to the disk cache of built programs (the first variants of a node, and a
gate's shapes, are built several at once). The budget bounds the whole tuning: see Tuner.

`CachedVariants` is what `OpenCLBackend.choose_variants` runs: the cache's choices for a
graph's nodes (each re-checked to be one its space holds), tuning what is missing on first use
when it has a budget.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from cnnc import settings
from cnnc.backends.opencl.chain import chains_apply
from cnnc.backends.opencl.launches import BindContext
from cnnc.crosscheck import single_node_graph
from cnnc.errors import CnncError
from cnnc.ir.conv_maxpool import POOL_OF
from cnnc.ir.graph import Graph, Node
from cnnc.tune.cache import (
    TuningCache,
    device_fields,
    device_key,
    entry_id,
    make_entry,
    make_key,
    warn,
)
from cnnc.tune.gate import Gate, Verdict, prebuild, random_values
from cnnc.tune.space import (
    as_layer,
    default_variant,
    describe,
    family,
    gemm_of,
    tunable,
    tuning_graph,
    variant_space,
)

# The key's entry (in its attributes) naming the variants a node's readers take out of its
# space or add to it (node_key).
READERS_SPACE = "(readers' space)"
# Beside the attributes of a convolution a 2x2 pooling reads (conv2d_maxpool, conv2d_avgpool,
# split by tuning_graph): the pooling's op, for its variants are timed with the pooling as the
# node binds it (Tuner.tune_node), so its entry is not an unpooled convolution's.
POOLED_BY = "(timed with its pooling)"
MIN_GAIN = 0.03  # a variant must be this much faster than the default to replace it
SMALL_SHARE = 0.005  # nodes under this share of the tunable FLOPs are tuned last
MIN_RUNS, MAX_RUNS, RUN_SECONDS = 3, 7, 0.2  # timed runs per variant
# ... where a variant is timed by its launches' device time (a pass in chains): each run costs
# microseconds. With 7, fashion-best's chained batch-1 pass came out of four tunings at
# 0.37-0.45 ms (exe.run, Intel Xeon); with 25, 0.37 ms from both of two.
EVENT_RUNS = 25
# A variant whose first timed run is this much slower than the best median so far is timed no
# more: noise on a shared machine slows runs down, it does not make a 1.3x gap appear faster.
CUT = 1.3
# The search of a node stops after this many variants in a row that were not faster than the
# best so far (variant_space orders each node's space by likeliness), and a family of variants
# (family(): an algorithm, a Winograd tile) is left when the first of it timed (its likeliest;
# the default, for the direct algorithm) is FAMILY_CUT times slower than the best: register
# tiles changed the direct kernel's speed by 1.1-2.1x where measured, not more. A family that lost
# (its best LOSS times slower than the node's best) on each of the first LOST_NODES nodes of
# one op it was timed on in this run, and won on none, is not timed on later nodes of that op.
PATIENCE = 2
MAX_PATIENCE = 1_000  # an extending tuner's last pass: the rest of the space, within its share
FAMILY_CUT = 2.0
LOST_NODES = 3
LOSS = 1.1
ROUNDS = 3  # side-by-side rounds of the default and the best variant (2 where both are CUT)
# The fastest variants by their own timings that are timed again side by side with the default
# and each other before the decision: each variant's runs were taken at its own moment, and on a
# shared machine the order of close ones is noise (the seed model's 14x14 64 -> 128 convolution,
# Intel Xeon: the fused Winograd F(2x2) 1.81x the direct default side by side, the three-launch
# F(4x4) 1.42x; a --force tune kept the latter, its own runs having read 1.77x).
FINALISTS = 3
# Where a variant's side-by-side rounds disagree (faster than the default in some, not in
# others: a neighbour's burst in one), more rounds, up to this many, while the budget allows.
MORE_ROUNDS = 7
# Until this run has measured a correctness gate: its cost as a multiple of what setting up
# and timing one variant cost (the gate builds the variant again for two edge shapes).
GATE_COST_GUESS = 3.0
MARGIN = 1.5  # estimates from medians are multiplied by this (a shared machine varies)
# What a run's first-use tuning leaves of its budget (at most a sixth) for building what it did
# not: the seed model's cold first run (empty tuning and program caches, pocl, Zen 3) took 69.9 s
# for its kernels with a 60 s tuning budget, the last ~10 s building the training step's other
# launches and the evaluation graph's.
BUILD_SECONDS = 10.0


@dataclass
class NodeResult:
    node: str
    op: str
    variant: dict[str, Any]
    default: dict[str, Any]
    seconds: float = 0.0
    default_seconds: float = 0.0
    flops: int = 0
    source: str = "tuned"  # 'tuned', 'cache', 'same key', 'small', 'no budget'
    tried: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    # The search's state between the tuner's two passes (tune_graph): the space indices
    # timed, and whether the first pass stopped it with variants left to time.
    timed: list[int] = field(default_factory=list, repr=False)
    dropped: set[Family] = field(default_factory=set, repr=False)
    cut: bool = False
    # Whether PATIENCE ended the search with variants left (an extending tuner resumes it).
    stale: bool = False

    @property
    def speedup(self) -> float:
        return self.default_seconds / self.seconds if self.seconds > 0 else 1.0


@dataclass
class Timed:
    """One variant of a node, set up and timed."""

    index: int  # in the node's space
    seconds: float  # median of its timed runs
    again: Callable[[], float]  # times one more run
    programs: set[Any]  # the program keys it runs (ProgramCache.store)
    cost: float  # wall seconds its build, first run and timing took
    runs: int = 0  # how many runs were timed


def node_key(backend: Any, graph: Graph, node: Node, batch: int) -> dict[str, Any]:
    """The node's cache key: the launch (device, kernels, op, shapes, attributes, batch), and
    where the node's readers change its space, the variants they take out or add: a node
    shares its entry only with nodes that may run the same variants. (A 3x3 convolution a 2x2
    pooling reads in its store is offered no multi-tile F(7x7), and where it has up to 8
    channels the row kernel, which pools as it stores: fashion-best's unpooled 14x14 one won
    F(7x7), and fashion-plus's pooled one of the same shapes, sharing its key, ran the direct
    default and a pooling launch, its cached variant not one of its own.)"""
    shapes = [list(graph.concrete_shape(v, batch)) for v in (*node.operands, node.name)]
    attrs = dict(node.attrs)
    changed = _space_by_readers(backend, graph, node, batch)
    if changed:  # beside the attributes, where a tuning file of an earlier version accepts it
        attrs[READERS_SPACE] = changed
    pool = pooled_by(graph, node)
    if pool is not None:
        attrs[POOLED_BY] = pool
    return make_key(device_fields(backend.device), node.op, shapes, attrs, batch)


def pooled_by(graph: Graph, node: Node) -> str | None:
    """The op of the 2x2 pooling fused with `node` (a conv2d_maxpool or conv2d_avgpool node of
    the inference graph, split by tuning_graph into the convolution and `<name>/pool` reading it
    alone), None for other nodes."""
    pool = f"{node.name}/pool"
    if graph.consumers.get(node.name) != (pool,) or pool not in graph.node_map:
        return None
    op = graph.node(pool).op
    return op if op in POOL_OF.values() else None


def _space_by_readers(backend: Any, graph: Graph, node: Node, batch: int
                      ) -> dict[str, list[Any]]:
    """The variants of `node` alone that its space in `graph` lacks ("taken") and those only
    that space has ("added"), each sorted; {} for most nodes."""
    here = variant_space(node, BindContext(graph, batch, backend.target))
    alone = variant_space(node, BindContext(single_node_graph(graph, node, batch), batch,
                                            backend.target))
    out = {"taken": [v for v in alone if v not in here], "added": [v for v in here
                                                                   if v not in alone]}
    return {k: sorted(v, key=lambda x: json.dumps(x, sort_keys=True))
            for k, v in out.items() if v}


def gemm_flops(node: Node, ctx: BindContext) -> int:
    return gemm_of(node, ctx).flops


# What a variant computes how, tiles aside (space.family): an algorithm, and what sets its
# variants apart (Winograd's output tile, the direct algorithm's copied windows).
Family = tuple[Any, ...]


def process_age() -> float:
    """Seconds since this process started (its interpreter's start and imports included), from
    /proc on Linux; 0 where that cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
        return max(0.0, uptime - started)
    except (OSError, ValueError, IndexError):
        return 0.0


class Tuner:
    """Tunes the nodes of graphs on one device within a total budget of seconds.

    The budget bounds the tuner's wall time, the last node's side-by-side timing and gate
    included: a step starts only when what it is expected to cost (measured earlier in this
    run) fits in what is left, so the budget is never overrun by more than a misestimate (or,
    for a budget too small for it, by the first node's default: nothing is measured before).
    `spent` is time already gone from the budget (the process's start, for `cnnc tune`);
    `clock` is what the budget is measured with (tests pass a fake one).
    """

    def __init__(self, device: Any, cache: TuningCache, budget: float, *,
                 out: TextIO | None = None, progress: bool | None = None, spent: float = 0.0,
                 clock: Callable[[], float] = time.perf_counter, extend: float | None = None):
        from cnnc.backends.opencl.runtime import OpenCLBackend

        # A backend of its own: the one-node graphs' state has the network's names, and must
        # not overwrite the weights of the backend being tuned for.
        self.backend = OpenCLBackend(device)
        # Variants are timed a launch at a time: no chains to build (chain.py; the whole
        # pass's timing, device_choice.py, runs what a pass runs). Where the pass will run in
        # chains, by their launches' device time (_time).
        self.chains = self.backend.chains
        self.backend.chains = False
        self._profiling: Any = None  # the queue that times variants by events
        self.cache = cache
        self.budget = float(budget)
        self.clock = clock
        self.deadline = clock() + self.budget - spent
        self.out = out or sys.stderr
        self.progress = progress
        self.results: dict[str, NodeResult] = {}  # by entry id
        # With a number: what the passes leave of the budget, down to that many seconds (kept
        # for what the caller does after tuning), goes on the searches PATIENCE ended
        # (tune_graph's third pass): `cnnc tune` and Model.tune, given a budget to spend; not a
        # run's first-use tuning, which should start the run once its searches are decisive.
        self.extend = extend
        self.costs: list[float] = []  # what each variant's setup and timing cost
        self.gates: list[float] = []  # what each correctness gate cost
        self.prebuilds: list[float] = []  # what building each node's first variants cost
        # Per family: the nodes it lost on (by LOSS), and those it won (tune_node).
        self.lost: dict[Family, int] = {}
        self.won: set[Family] = set()

    def typical_cost(self) -> float:
        """What setting up and timing one variant costs, the median so far in this run."""
        return statistics.median(self.costs) if self.costs else 0.0

    def gate_cost(self, variant_cost: float) -> float:
        """What a correctness gate is expected to cost: the median so far with a margin (a
        gate slowed down by another process on a shared machine is not the rule), or before
        any, a multiple of what its variant cost."""
        if not self.gates:
            return GATE_COST_GUESS * variant_cost
        return MARGIN * statistics.median(self.gates)

    def node_cost(self) -> float:
        """What tuning a node at least (its first variants built, the default and one more
        timed, the gate) is expected to cost, from what this run measured so far."""
        if not self.costs:
            return 0.0
        typical = self.typical_cost()
        return MARGIN * (statistics.median(self.prebuilds) + 2 * typical) + self.gate_cost(typical)

    def _lost_family(self, fam: Family) -> bool:
        return fam not in self.won and self.lost.get(fam, 0) >= LOST_NODES

    def left(self) -> float:
        return self.deadline - self.clock()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # ------------------------------------------------------------ one variant

    def _time(self, graph: Graph, name: str, batch: int, values: Mapping[str, Any],
              variant: Mapping[str, Any], index: int, best: float | None = None) -> Timed:
        """Set up and time one variant: the median of its runs, or its first run alone when
        that is CUT times slower than `best` (the fastest median so far)."""
        import pyopencl as cl

        start = self.clock()
        backend = self.backend
        backend.choose_variants = lambda g, b, v=dict(variant): {name: v}
        try:
            with backend.programs.recording() as programs:
                backend.init_state(graph.state, {s.name: values[s.name] for s in graph.state})
                exe = backend.compile(graph, batch)
                exe.run({n: values[n] for n in graph.inputs}, [], step=0)
        finally:
            backend.choose_variants = lambda g, b: {}
        most = MAX_RUNS
        if not chains_apply(backend.device, graph, batch, self.chains):
            queue = backend.queue

            def once() -> float:
                start = time.perf_counter()
                for b in exe.bound:
                    b.enqueue(cl, queue)
                queue.finish()
                return time.perf_counter() - start
        else:
            most = EVENT_RUNS
            # In a chain a launch costs no wake-up of its own: the launches' device time
            # (events) is what a variant adds to the pass. Timed by wall clock (a batch-1
            # launch's ~10-15 us of fixed cost, and its noise, counted), the seed model's
            # batch-1 variants made a chained pass of 0.49-0.60 ms; timed by events 0.44-0.47
            # ms (benchmarks/latency.py, Intel Xeon, two tunings each).
            if self._profiling is None:
                self._profiling = cl.CommandQueue(
                    backend.device.context,
                    properties=cl.command_queue_properties.PROFILING_ENABLE)
            profiling = self._profiling

            def once() -> float:
                events = [cl.enqueue_nd_range_kernel(profiling, b.kernel, b.launch.global_size,
                                                     b.launch.local_size) for b in exe.bound]
                profiling.finish()
                return sum(e.profile.end - e.profile.start for e in events) * 1e-9

        # Runs until RUN_SECONDS are timed, MIN_RUNS of them or two of a slow launch; one of a
        # variant that is far slower than the best at its first.
        times = [once()]
        if best is None or times[0] <= CUT * best:
            while len(times) < most and (len(times) < MIN_RUNS or sum(times) < RUN_SECONDS):
                if len(times) >= 2 and sum(times) >= RUN_SECONDS:
                    break
                times.append(once())
        cost = self.clock() - start
        return Timed(index, statistics.median(times), once, programs, cost, len(times))

    # ------------------------------------------------------------ one node

    def _retimed(self, t: Timed, best: Timed, stop: float) -> Timed:
        """`t` timed again side by side with the node's best so far (ROUNDS rounds), where its
        family won on an earlier launch of this run but its first variant here did not beat the
        best: a neighbour's burst on a shared machine during its few timed runs would otherwise
        end the family's search (PATIENCE) or the node's (fashion-plus's 64 -> 64 3x3
        convolution kept the direct kernel in one run, where Winograd runs 1.3-1.85x faster).
        Its time on the best's scale; as it was if the rounds do not fit in the node's share."""
        need = ROUNDS * (best.seconds + t.seconds)
        if self.clock() + need > min(stop, self.deadline):
            return t
        start = self.clock()
        ratio = statistics.median(t.again() / max(best.again(), 1e-12) for _ in range(ROUNDS))
        return replace(t, seconds=best.seconds * ratio, cost=t.cost + self.clock() - start)

    def _final_cost(self, default: Timed, best: Timed | None) -> float:
        """What deciding the node is expected to cost: the side-by-side rounds and the gate."""
        if best is None:
            return 0.0
        rounds = ROUNDS * (default.seconds + best.seconds)
        return rounds + self.gate_cost(max(best.cost, default.cost))

    def tune_node(self, graph: Graph, node: Node, batch: int, share: float,
                  key: dict[str, Any], *, first_only: bool = False,
                  prior: NodeResult | None = None, patience: int = PATIENCE,
                  timed_as: tuple[Graph, Node] | None = None) -> NodeResult:
        """Search `node`'s space. first_only: only its first variants (those built at once),
        the result `cut` if more were left; prior: the first pass's result, whose search this
        resumes (the default and the prior winner timed again beside the variants not yet
        timed; the winner, admitted by its gate then, not checked again); patience: how many
        variants in a row that gain nothing end the search; timed_as: the node (of that graph,
        under the same name) whose launches each variant is timed by, where they are not the
        node's own: a convolution fused with its pooling (bind_conv_maxpool.py) times the
        pooling's own launch with the variants that cannot pool as they store. Timed alone,
        lenet5's second convolution took the implicit GEMM (1.06x the row kernel's time) and
        with it an average pooling launch the row kernel saves."""
        ctx = BindContext(graph, batch, self.backend.target)
        space = variant_space(node, ctx)
        if prior is not None:
            keep = {0, *(i for i, v in enumerate(space) if v == prior.variant)}
            done = set(prior.timed) - keep
            order = [i for i in range(len(space)) if i not in done]
        else:
            order = list(range(len(space)))
        op = as_layer(node).op

        def family_of(variant: Mapping[str, Any]) -> Family:
            # Families are kept apart per op: the kernel gradient's Winograd (its own kernels)
            # shares a family with the forward pass's unfused Winograd, which loses to the fused
            # one on every forward node, and was then never timed on a kernel gradient.
            return (op, *family(variant))

        default = space[0]
        g1 = single_node_graph(*(timed_as or (graph, node)), batch)
        values = random_values(g1, batch)
        stop = self.clock() + share
        timed: list[Timed] = []
        result = NodeResult(node.name, node.op, default, default, flops=gemm_flops(node, ctx))
        firsts: dict[Family, float] = {}  # each family's first variant's time
        dropped: set[Family] = set(prior.dropped) if prior is not None else set()
        stale = 0  # variants in a row no faster than the best so far
        # The variants timed on every node unless they fail (the default, and PATIENCE more
        # unless one is faster), their programs built at once.
        start = self.clock()
        first = [space[i] for i in order
                 if not self._lost_family(family_of(space[i]))][:1 + PATIENCE]
        prebuild(self.backend, [(g1, node.name, batch, v) for v in first])
        self.prebuilds.append(self.clock() - start)
        for i in order:
            variant = space[i]
            if i > 0:
                if stale >= patience:
                    result.stale = True
                    break
                if family_of(variant) in dropped or self._lost_family(family_of(variant)):
                    continue
                if first_only and variant not in first:
                    result.cut = True
                    break
                # The next variant is expected to cost as much as the dearest so far (and a
                # build), and the decision after it its side by side timing and gate: start it
                # only if that fits. The default and the likeliest gain (variant_space puts it
                # next) may run past the node's share of the budget, never past the whole budget.
                best = min(timed, key=lambda t: t.seconds)
                expect = max(self.typical_cost(), *(t.cost for t in timed))
                if variant not in first:  # its programs are still to be built
                    expect += statistics.median(self.prebuilds)
                need = expect + self._final_cost(timed[0], best)
                now = self.clock()
                if now + need > self.deadline:
                    result.cut = True  # a later `cnnc tune` resumes it (its cache entry says so)
                    break
                # (A resumed search times at least one variant its first part did not, so that
                # each resumption of it makes progress.)
                if i > 1 and now + need > stop and (
                        prior is None or any(t.index not in prior.timed for t in timed[1:])):
                    result.cut = True  # the second pass may resume it
                    break
            try:
                t = self._time(g1, node.name, batch, values, variant, i,
                               min((t.seconds for t in timed), default=None))
            except CnncError as err:  # a variant that cannot build or launch here is not used
                if i == 0:
                    raise
                result.rejected.append((describe(variant), f"failed to run: {err}"))
                continue
            best_before = min((t.seconds for t in timed), default=None)
            if (best_before is not None and not t.seconds < best_before * (1 - MIN_GAIN)
                    and family_of(variant) in self.won and family_of(variant) not in firsts):
                t = self._retimed(t, min(timed, key=lambda t: t.seconds), stop)
            timed.append(t)
            result.timed.append(i)
            self.costs.append(t.cost)
            faster = best_before is None or t.seconds < best_before * (1 - MIN_GAIN)
            stale = 0 if faster else stale + 1
            firsts.setdefault(family_of(variant), t.seconds)
            best_now = min(t.seconds for t in timed)
            dropped.update(f for f, first in firsts.items() if first > FAMILY_CUT * best_now)
        if prior is not None and prior.variant != default and not any(
                space[t.index] == prior.variant for t in timed):
            return prior  # the budget ended before the first pass's winner was timed again
        result.tried = len(timed)
        result.dropped = dropped
        if prior is not None:
            result.tried += len(set(prior.timed) - set(result.timed))
            result.timed = sorted(set(prior.timed) | set(result.timed))
            result.rejected = [*prior.rejected, *result.rejected]
        base = timed[0]
        best_time = min(t.seconds for t in timed)
        for fam in firsts:
            fam_best = min(t.seconds for t in timed if family_of(space[t.index]) == fam)
            if fam != family_of(default) and fam_best > LOSS * best_time:
                self.lost[fam] = self.lost.get(fam, 0) + 1
        admitted = prior.variant if prior is not None and prior.variant != default else None
        winner = self._decide(graph, node, batch, space, timed, result, admitted)
        if winner is None and admitted is not None:
            # A resumed search that finds nothing faster than the default side by side keeps
            # the first pass's winner, which beat the default side by side then and passed its
            # gate: a later pass's few rounds under a neighbour's burst do not undo that
            # (resnet_mini's 28x28x16 layer, Intel Xeon under load 3: F(4x4) fused won 10.2 ms
            # to 4.4 in two passes, the extend pass's rounds 8.6/8.4/12.3 ms against
            # 13.4/11.6/7.8 cached the direct kernel, 2.5x slower).
            winner = next(t for t in timed if space[t.index] == admitted)
            result.variant = dict(admitted)
            result.seconds, result.default_seconds = prior.seconds, prior.default_seconds
        if winner is not None:
            self.won.add(family_of(space[winner.index]))
        self.backend.programs.store((winner or base).programs)
        if winner is None:
            result.seconds = result.default_seconds = base.seconds
        return result

    def _decide(self, graph: Graph, node: Node, batch: int, space: list[dict[str, Any]],
                timed: list[Timed], result: NodeResult,
                admitted: Mapping[str, Any] | None = None) -> Timed | None:
        """The fastest variant that beats the default side by side and passes the gate (or is
        `admitted`, by a gate earlier in this run), set in `result`; None to keep the
        default."""
        base = timed[0]
        gate = None
        side_by_side = self._finalists(base, timed)
        # The finalists in their side-by-side order, then the rest by their own timings.
        finals = sorted((t for t in timed if t.index in side_by_side),
                        key=lambda t: side_by_side[t.index][1])
        ranked = [*finals, *sorted((t for t in timed if t.index not in side_by_side),
                                   key=lambda t: t.seconds)]
        for t in ranked:
            if t.index == 0:
                return None
            known = admitted is not None and space[t.index] == admitted
            if t.index in side_by_side:
                t_default, t_variant = side_by_side[t.index]
            else:
                cost = ROUNDS * (base.seconds + t.seconds) if known \
                    else self._final_cost(base, t)
                if cost > self.left():
                    # A slower variant that its gate admitted earlier in this run may still fit.
                    self.say(f"cnnc tune: {node.name}: no time left to check "
                             f"{describe(space[t.index])} against the default and the reference")
                    continue
                # The default's time and the variant's, measured again side by side (shared
                # machines).
                rounds = [(base.again(), t.again())]
                while len(rounds) < ROUNDS:
                    rounds.append((base.again(), t.again()))
                    if all(v * CUT < d for d, v in rounds):
                        break  # two rounds, each decisive
                while (len(rounds) < MORE_ROUNDS and _disagree(rounds)
                       and base.seconds + t.seconds + self._final_cost(base, t)
                       - ROUNDS * (base.seconds + t.seconds) < self.left()):
                    rounds.append((base.again(), t.again()))
                t_default = statistics.median(r[0] for r in rounds)
                t_variant = statistics.median(r[1] for r in rounds)
            if t_variant > t_default * (1 - MIN_GAIN):
                if t.index in side_by_side:
                    continue  # another finalist may still beat the default
                return None  # no faster than the default after all
            if known:
                verdict = Verdict(True)
            else:
                if t.index in side_by_side and t is not finals[0] and \
                        self.gate_cost(max(base.cost, t.cost)) > self.left():
                    continue  # (the first finalist's gate was counted before its rounds)
                start = self.clock()
                gate = gate or Gate(self.backend, graph, node, batch)
                verdict = gate.check(space[t.index])
                self.gates.append(self.clock() - start)
            if not verdict.admitted:
                result.rejected.append((describe(space[t.index]), verdict.reason))
                self.say(f"cnnc tune: {node.name}: variant {describe(space[t.index])} rejected "
                         f"by the correctness gate: {verdict.reason}")
                continue
            result.variant = space[t.index]
            result.seconds, result.default_seconds = t_variant, t_default
            return t
        return None

    def _finalists(self, base: Timed, timed: list[Timed]) -> dict[int, tuple[float, float]]:
        """The FINALISTS fastest variants that their own timings put ahead of the default,
        timed again in ROUNDS interleaved rounds with it (up to MORE_ROUNDS where a
        finalist's rounds disagree): by index, (the default's median, the
        variant's). {} where fewer than two are ahead (the single one's side-by-side check is
        _decide's) or the rounds and a gate do not fit in what is left of the budget."""
        ahead = sorted((t for t in timed if t.index != 0 and t.seconds < base.seconds),
                       key=lambda t: t.seconds)[:FINALISTS]
        if len(ahead) < 2:
            return {}
        rounds_cost = ROUNDS * (base.seconds + sum(t.seconds for t in ahead))
        if rounds_cost + self.gate_cost(max(t.cost for t in ahead)) > self.left():
            return {}
        runs: dict[int, list[float]] = {t.index: [] for t in (base, *ahead)}
        one_round = base.seconds + sum(t.seconds for t in ahead)
        while len(runs[0]) < ROUNDS or (
                len(runs[0]) < MORE_ROUNDS
                and any(_disagree(list(zip(runs[0], runs[t.index]))) for t in ahead)
                and one_round + self.gate_cost(max(t.cost for t in ahead)) < self.left()):
            for t in (base, *ahead):
                runs[t.index].append(t.again())
        t_default = statistics.median(runs[0])
        return {t.index: (t_default, statistics.median(runs[t.index])) for t in ahead}

    # ------------------------------------------------------------ a graph

    def tune_graph(self, graph: Graph, batch: int, *, force: bool = False) -> list[NodeResult]:
        """Tune every tunable node of `graph` not in the cache (all of them with `force`), within
        what is left of the budget; the results, cached ones included, in graph order."""
        # A convolution fused with its pooling is timed as the fused node binds (tune_node).
        bound_as = {n.name: (graph, n) for n in graph.nodes if n.op in POOL_OF}
        graph = tuning_graph(graph)
        ctx = BindContext(graph, batch, self.backend.target)
        nodes = [n for n in graph.nodes if tunable(n)]
        keys = {n.name: node_key(self.backend, graph, n, batch) for n in nodes}
        flops = {n.name: gemm_flops(n, ctx) for n in nodes}
        total = sum(flops.values()) or 1
        results: dict[str, NodeResult] = {}
        todo: list[Node] = []
        smalls: list[Node] = []  # few FLOPs: tuned last, if time is left
        seen: set[str] = set()
        partial: list[Node] = []  # cached from a search cut short: resumed in the second pass
        for n in nodes:
            eid = entry_id(keys[n.name])
            entry = None if force else self.cache.get(keys[n.name])
            if entry is not None and entry.get("cut") and entry["variant"] not in variant_space(
                    n, ctx):
                entry = None  # a cut search's winner this version does not offer: search anew
            if entry is not None:
                results[n.name] = _from_entry(n, entry, default_variant(n, ctx), flops[n.name])
                if entry.get("cut") and eid not in seen and eid not in self.results:
                    seen.add(eid)
                    partial.append(n)
            elif eid in self.results:
                results[n.name] = _reused(self.results[eid], n)
            elif eid in seen:
                continue
            elif flops[n.name] < SMALL_SHARE * total:
                seen.add(eid)
                results[n.name] = NodeResult(n.name, n.op, {}, {}, flops=flops[n.name],
                                             source="small")
                smalls.append(n)
            else:
                seen.add(eid)
                todo.append(n)
        todo.sort(key=lambda n: -flops[n.name])
        smalls.sort(key=lambda n: -flops[n.name])
        weight = sum(flops[n.name] for n in todo)
        bar = _bar(len(todo), self.progress, self.out)
        programs = self.backend.programs
        skipped: dict[str, NodeResult] = {}  # by entry id: launches the budget did not reach

        def tune(n: Node, share: float, prior: NodeResult | None,
                 patience: int = PATIENCE) -> None:
            if bar is not None:
                bar.set_postfix_str(n.name)
            # Only the winners' programs are written to the disk cache (tune_node).
            with programs.deferred_writes():
                r = self.tune_node(graph, n, batch, share, keys[n.name],
                                   first_only=prior is None, prior=prior, patience=patience,
                                   timed_as=bound_as.get(n.name))
            self.results[entry_id(keys[n.name])] = results[n.name] = r
            self.cache.put(make_entry(keys[n.name], r.variant, r.seconds, r.default_seconds,
                                      cut=r.timed if r.cut else None))

        def resume(searches: list[Node], keep: float = 0.0, patience: int = PATIENCE) -> None:
            """Resume `searches`, largest first, each within its FLOPs' share of what is left
            of the budget but `keep` seconds."""
            weight = sum(flops[n.name] for n in searches)
            for n in sorted(searches, key=lambda n: -flops[n.name]):
                left = self.left() - keep
                if left <= self.node_cost():
                    break
                share = max(left * flops[n.name] / max(weight, 1), self.node_cost())
                weight -= flops[n.name]
                tune(n, share, results[n.name], patience)

        # Two passes: first every node's likeliest variants (built at once), so that a budget
        # too small for every search still gives each node its largest gain (Winograd's 3-5x
        # over the direct default) before any node gets a few percent more from its other
        # tiles; then, with what is left, the searches the first pass cut, in the same order.
        try:
            for n in todo:
                eid = entry_id(keys[n.name])
                # A node is worth starting if the default and one variant can be timed and
                # checked (costs as measured so far in this run).
                if self.left() <= self.node_cost():
                    results[n.name] = skipped[eid] = NodeResult(
                        n.name, n.op, {}, {}, flops=flops[n.name], source="no budget")
                    continue
                share = max(self.left() * flops[n.name] / max(weight, 1), self.node_cost())
                weight -= flops[n.name]
                tune(n, share, None)
                if bar is not None:
                    bar.update()
            resume([n for n in todo if results[n.name].cut] + partial)
            # Then, with what is still left, the launches of few FLOPs: where they run far from
            # the peak their time is not small (resnet_mini's 1x1 stride-2 shortcut, 0.4% of
            # the FLOPs, 6% of a forward pass at 22% of the peak on its default).
            for n in smalls:
                if self.left() <= self.node_cost():
                    break
                tune(n, self.node_cost(), None)
            if self.extend is not None:
                # Last, what is still left goes on the searches PATIENCE ended, each now timing
                # the rest of its space (but the families it dropped) within its share: two
                # variants in a row that gain nothing end a search on the likeliest tiles
                # first, and a later one can still be faster (shufflenet_mini's 1x1 head:
                # 2x16x2 8-13% faster than the 4x8x2 kept when `cnnc tune --budget 120` ended
                # after 4 s with 3 variants timed per node; efficientnet_mini's expansion:
                # 4x16x1 0.8-0.9x the default, never timed).
                resume([n for n in todo if results[n.name].stale], keep=self.extend,
                       patience=MAX_PATIENCE)
        finally:
            if bar is not None:
                bar.close()
        for n in nodes:  # later nodes with the key of one tuned (or not reached) above
            if n.name in results and results[n.name].source == "cache, cut short":
                eid = entry_id(keys[n.name])
                if eid in self.results and n.name != self.results[eid].node:
                    results[n.name] = _reused(self.results[eid], n)
            if n.name not in results:
                eid = entry_id(keys[n.name])
                if eid in self.results:
                    results[n.name] = _reused(self.results[eid], n)
                elif eid in skipped:
                    results[n.name] = replace(skipped[eid], node=n.name, op=n.op)
                else:  # a small launch's key the budget did not reach
                    results[n.name] = NodeResult(n.name, n.op, {}, {}, flops=flops[n.name],
                                                 source="small")
        return [results[n.name] for n in nodes]


def _disagree(rounds: list[tuple[float, float]]) -> bool:
    """Whether side-by-side rounds of (the default's time, a variant's) disagree: the variant
    faster by MIN_GAIN in some rounds and not in others."""
    faster = [v < d * (1 - MIN_GAIN) for d, v in rounds]
    return any(faster) and not all(faster)


def _from_entry(node: Node, entry: Mapping[str, Any], default: dict[str, Any],
                flops: int) -> NodeResult:
    # An entry of a cut search is the prior of its resumed search (tune_node): its winner,
    # admitted by a gate when it was stored, and the variants it timed, not timed again.
    cut = bool(entry.get("cut"))
    return NodeResult(node.name, node.op, dict(entry["variant"]), default,
                      entry["seconds"], entry["default_seconds"], flops,
                      source="cache, cut short" if cut else "cache",
                      timed=list(entry.get("cut", [])), cut=cut)


def _reused(r: NodeResult, node: Node) -> NodeResult:
    return NodeResult(node.name, node.op, r.variant, r.default, r.seconds, r.default_seconds,
                      r.flops, source="same key")


def _bar(total: int, progress: bool | None, out: TextIO) -> Any:
    if total == 0 or progress is False:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="tuning kernels", unit="launch", file=out,
                disable=None if progress is None else False, leave=False)


# ---------------------------------------------------------------- the backend's hook


def companion_choice(cache: TuningCache, device: Any, graph: Graph, batch: int) -> bool | None:
    """Whether `cache` holds a forward pass of `graph` at `batch` timed faster on the device's
    one-thread companion (True) or on the device (False); None: not timed
    (device_choice.py)."""
    entry = cache.get(device_key(device, graph, batch))
    if entry is None or entry["variant"].get("companion") not in (0, 1):
        return None
    return bool(entry["variant"]["companion"])


class CachedVariants:
    """OpenCLBackend.choose_variants: the cache's variant for each tunable node; with a tuning
    budget, the missing ones tuned first (once per process, within the budget)."""

    def __init__(self, backend: Any, cache: TuningCache | None = None, *,
                 tune_budget: float = 0.0, out: TextIO | None = None,
                 progress: bool | None = None):
        self.backend = backend
        self.cache = cache or TuningCache.default()
        self.tune_budget = tune_budget
        self.out = out or sys.stderr
        self.progress = progress
        self._tuner: Tuner | None = None
        self._warned: set[str] = set()

    def for_backend(self, backend: Any) -> CachedVariants:
        """The same choices (cache, first-use budget) for another backend's device: a
        device's one-thread companion (cnnc/backends/opencl/latency.py)."""
        return CachedVariants(backend, self.cache, tune_budget=self.tune_budget, out=self.out,
                              progress=self.progress)

    def companion_choice(self, device: Any, graph: Graph, batch: int) -> bool | None:
        """Whether a tuning timed a forward pass faster on the device's one-thread companion
        (True) or on the device (False); None: not timed (device_choice.py)."""
        return companion_choice(self.cache, device, graph, batch)

    def _tune(self, graph: Graph, batch: int) -> None:
        if self._tuner is None:
            print(f"\ncnnc: tuning the kernel launches of '{graph.name}' at batch {batch} for "
                  f"{self.backend.device.name} (first use: at most {self.tune_budget:.0f} s, kept "
                  f"in {self.cache.path}; --no-tune skips)", file=self.out, flush=True)
            # The budget holds the builds after the tuning too (the launches no search built,
            # the evaluation graph's), so that a run's kernels are ready within it.
            self._tuner = Tuner(self.backend.device, self.cache,
                                self.tune_budget - min(BUILD_SECONDS, self.tune_budget / 6),
                                out=self.out, progress=self.progress)
        if self._tuner.left() > 0:
            self._tuner.tune_graph(graph, batch)

    def _carries_over(self, graph: Graph, node: Node, variant: Mapping[str, Any],
                      tuned_batch: int, ctx: BindContext) -> bool:
        """Whether another batch size's choice holds at ctx's: where its algorithm is this
        batch's default, or the default there was the same as here, so that it was timed
        against what it replaces. A dense layer's default is gemv at batch 1 (a rule) and the
        direct GEMM at 256: the direct GEMM that won at 256 never raced gemv, yet ran at batch
        1 (fashion-plus's 1152 -> 256 dense_bn: 0.07 ms, 4% of the peak), and the classifiers'
        heads ran as a GEMM and a softmax instead of dense_softmax's one launch."""
        here = default_variant(node, ctx)["algo"]
        if variant.get("algo", here) == here:
            return True
        there = BindContext(graph, tuned_batch, self.backend.target)
        return default_variant(node, there)["algo"] == here

    def __call__(self, graph: Graph, batch: int) -> dict[str, dict[str, Any]]:
        graph = tuning_graph(graph)
        nodes = [n for n in graph.nodes if tunable(n)]
        keys = {n.name: node_key(self.backend, graph, n, batch) for n in nodes}
        # First use: none of the graph's launches tuned yet on this device. Once some are (by
        # an earlier run's budget, or `cnnc tune`), a run starts at once with what is cached:
        # the launches a budget did not reach wait for `cnnc tune`, not for every later run.
        # A graph at another batch size than the one tuned (a run's short last batch, its
        # evaluation batch) takes the tuned batch's choices, where they hold at this size.
        entries = {name: self.cache.get(k) for name, k in keys.items()}
        if self.tune_budget > 0 and not any(entries.values()):
            entries = {name: self.cache.get_other_batch(k) for name, k in keys.items()}
            if not any(entries.values()):
                self._tune(graph, batch)
                entries = {name: self.cache.get(k) for name, k in keys.items()}
        ctx = BindContext(graph, batch, self.backend.target)
        chosen: dict[str, dict[str, Any]] = {}
        for n in nodes:
            entry = entries[n.name]
            if entry is None or entry["key"]["batch"] != batch:
                # the nearest batch whose choice holds here, not the nearest alone: a training
                # step's batch 32 keys the seed model's pooled 7x7 convolution too, and its
                # choice, which does not hold at 64, hid forward batch 256's Winograd from the
                # chunks of 64 `cnnc tune` had timed with it (114 ms a batch of 256, not 47)
                for other in self.cache.other_batches(keys[n.name]):
                    variant = dict(other["variant"])
                    if variant in variant_space(n, ctx) and self._carries_over(
                            graph, n, variant, other["key"]["batch"], ctx):
                        chosen[n.name] = variant
                        break
                continue
            variant = dict(entry["variant"])
            if variant not in variant_space(n, ctx):
                eid = entry_id(keys[n.name])
                if eid not in self._warned:
                    self._warned.add(eid)
                    warn(f"the tuning cache's variant {describe(variant)} for '{n.name}' is not "
                         "one this version of cnnc generates for it; using the default")
                continue
            chosen[n.name] = variant
        return chosen


def tuning_enabled() -> bool:
    """False when CNNC_TUNE=0: the defaults only, no cache (the test suite sets it)."""
    return settings.tune()


def install(backend: Any, *, tune_budget: float = 0.0, out: TextIO | None = None,
            progress: bool | None = None) -> CachedVariants | None:
    """Make `backend` (an OpenCLBackend) use the tuning cache, tuning missing launches on first
    use within `tune_budget` seconds; nothing when CNNC_TUNE=0."""
    if not tuning_enabled():
        return None
    chooser = CachedVariants(backend, tune_budget=tune_budget, out=out, progress=progress)
    backend.choose_variants = chooser
    return chooser
