"""The tuner: times the admitted kernel variants of a graph's launches and keeps the winners.

For each tunable node (space.py) not yet in the cache, the node runs alone (a one-node graph,
data on the device) under each variant of its space, default first, each timed as the median
of a few runs. A node's search stops when it has used its share of the budget (the budget is
shared in proportion to the nodes' FLOPs; nodes under 0.5% of the FLOPs keep the defaults). The
fastest variant is then timed again beside the default, and it must beat it by MIN_GAIN and
pass the correctness gate (gate.py) to be kept; a variant the gate rejects is never used, and
the tuner says which and why. Nodes with the same cache key share one search.

`CachedVariants` is what `OpenCLBackend.choose_variants` runs: the cache's choices for a
graph's nodes (each re-checked to be one its space holds), tuning what is missing on first use
when it has a budget.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from cnnc import settings
from cnnc.backends.opencl.launches import BindContext
from cnnc.errors import CnncError
from cnnc.ir.graph import Graph, Node
from cnnc.tune.cache import TuningCache, device_fields, entry_id, make_entry, make_key, warn
from cnnc.tune.gate import Gate, random_values
from cnnc.tune.space import default_variant, describe, gemm_of, tunable, variant_space
from cnnc.verify import single_node_graph

MIN_GAIN = 0.03  # a variant must be this much faster than the default to replace it
SMALL_SHARE = 0.005  # nodes under this share of the tunable FLOPs keep the defaults
MIN_RUNS, MAX_RUNS, RUN_SECONDS = 3, 7, 0.2  # timed runs per variant


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

    @property
    def speedup(self) -> float:
        return self.default_seconds / self.seconds if self.seconds > 0 else 1.0


def node_key(backend: Any, graph: Graph, node: Node, batch: int) -> dict[str, Any]:
    shapes = [list(graph.concrete_shape(v, batch)) for v in (*node.operands, node.name)]
    return make_key(device_fields(backend.device), node.op, shapes, dict(node.attrs), batch)


def gemm_flops(node: Node, ctx: BindContext) -> int:
    g = gemm_of(node, ctx)
    return 2 * g.rows * g.cols * g.reduction * (ctx.shape(node.name)[-1] // max(g.cols, 1)
                                                if node.op.startswith("conv2d") else 1)


class Tuner:
    """Tunes the nodes of graphs on one device within a total budget of seconds."""

    def __init__(self, device: Any, cache: TuningCache, budget: float, *,
                 out: TextIO | None = None, progress: bool | None = None):
        from cnnc.backends.opencl.runtime import OpenCLBackend

        # A backend of its own: the one-node graphs' state has the network's names, and must
        # not overwrite the weights of the backend being tuned for.
        self.backend = OpenCLBackend(device)
        self.cache = cache
        self.budget = float(budget)
        self.deadline = time.perf_counter() + self.budget
        self.out = out or sys.stderr
        self.progress = progress
        self.results: dict[str, NodeResult] = {}  # by entry id

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # ------------------------------------------------------------ one variant

    def _time(self, graph: Graph, name: str, batch: int, values: Mapping[str, Any],
              variant: Mapping[str, Any]) -> tuple[float, Callable[[], float]]:
        """(median seconds of the variant's launches, a function timing one more run)."""
        import pyopencl as cl

        backend = self.backend
        backend.choose_variants = lambda g, b, v=dict(variant): {name: v}
        try:
            backend.init_state(graph.state, {s.name: values[s.name] for s in graph.state})
            exe = backend.compile(graph, batch)
            exe.run({n: values[n] for n in graph.inputs}, [], step=0)
        finally:
            backend.choose_variants = lambda g, b: {}
        queue = backend.queue

        def once() -> float:
            start = time.perf_counter()
            for b in exe.bound:
                b.enqueue(cl, queue)
            queue.finish()
            return time.perf_counter() - start

        times = [once()]
        while len(times) < MAX_RUNS and (len(times) < MIN_RUNS or sum(times) < RUN_SECONDS):
            times.append(once())
        return statistics.median(times), once

    # ------------------------------------------------------------ one node

    def tune_node(self, graph: Graph, node: Node, batch: int, share: float,
                  key: dict[str, Any]) -> NodeResult:
        ctx = BindContext(graph, batch, self.backend.target)
        space = variant_space(node, ctx)
        default = space[0]
        g1 = single_node_graph(graph, node, batch)
        values = random_values(g1, batch)
        stop = time.perf_counter() + share
        timed: list[tuple[float, int, Callable[[], float]]] = []
        result = NodeResult(node.name, node.op, default, default, flops=gemm_flops(node, ctx))
        for i, variant in enumerate(space):
            # The default and the likeliest gain (variant_space puts it next) even past the
            # node's share of the budget, not past the whole budget.
            past_share = i > 1 and time.perf_counter() > stop
            if i > 0 and (past_share or self.left() <= 0):
                break
            try:
                seconds, again = self._time(g1, node.name, batch, values, variant)
            except CnncError as err:  # a variant that cannot build or launch here is not used
                if i == 0:
                    raise
                result.rejected.append((describe(variant), f"failed to run: {err}"))
                continue
            timed.append((seconds, i, again))
        result.tried = len(timed)
        # The default's time and the best's, measured again side by side (shared machines).
        base = next(t for t in timed if t[1] == 0)
        gate = None
        for seconds, i, again in sorted(timed, key=lambda t: t[0]):
            if i == 0:
                break
            rounds = [(base[2](), again()) for _ in range(3)]
            t_default = statistics.median(r[0] for r in rounds)
            t_variant = statistics.median(r[1] for r in rounds)
            if t_variant > t_default * (1 - MIN_GAIN):
                break  # no faster than the default after all
            gate = gate or Gate(self.backend, graph, node, batch)
            verdict = gate.check(space[i])
            if not verdict.admitted:
                result.rejected.append((describe(space[i]), verdict.reason))
                self.say(f"cnnc tune: {node.name}: variant {describe(space[i])} rejected by "
                         f"the correctness gate: {verdict.reason}")
                continue
            result.variant = space[i]
            result.seconds, result.default_seconds = t_variant, t_default
            return result
        result.seconds = result.default_seconds = base[0]
        return result

    # ------------------------------------------------------------ a graph

    def tune_graph(self, graph: Graph, batch: int, *, force: bool = False) -> list[NodeResult]:
        """Tune every tunable node of `graph` not in the cache (all of them with `force`), within
        what is left of the budget; the results, cached ones included, in graph order."""
        ctx = BindContext(graph, batch, self.backend.target)
        nodes = [n for n in graph.nodes if tunable(n)]
        keys = {n.name: node_key(self.backend, graph, n, batch) for n in nodes}
        flops = {n.name: gemm_flops(n, ctx) for n in nodes}
        total = sum(flops.values()) or 1
        results: dict[str, NodeResult] = {}
        todo = []
        seen: set[str] = set()
        for n in nodes:
            eid = entry_id(keys[n.name])
            entry = None if force else self.cache.get(keys[n.name])
            if entry is not None:
                results[n.name] = _from_entry(n, entry, default_variant(n, ctx), flops[n.name])
            elif eid in self.results:
                results[n.name] = _reused(self.results[eid], n)
            elif flops[n.name] < SMALL_SHARE * total:
                results[n.name] = NodeResult(n.name, n.op, {}, {}, flops=flops[n.name],
                                             source="small")
            elif eid not in seen:
                seen.add(eid)
                todo.append(n)
        todo.sort(key=lambda n: -flops[n.name])
        weight = sum(flops[n.name] for n in todo)
        bar = _bar(len(todo), self.progress, self.out)
        try:
            for n in todo:
                eid = entry_id(keys[n.name])
                if self.left() <= 0:
                    results[n.name] = NodeResult(n.name, n.op, {}, {}, flops=flops[n.name],
                                                 source="no budget")
                    continue
                share = self.left() * flops[n.name] / max(weight, 1)
                weight -= flops[n.name]
                if bar is not None:
                    bar.set_postfix_str(n.name)
                r = self.tune_node(graph, n, batch, share, keys[n.name])
                self.results[eid] = r
                results[n.name] = r
                self.cache.put(make_entry(keys[n.name], r.variant, r.seconds,
                                          r.default_seconds))
                if bar is not None:
                    bar.update()
        finally:
            if bar is not None:
                bar.close()
        for n in nodes:  # later nodes with a key tuned above
            if n.name not in results:
                results[n.name] = _reused(self.results[entry_id(keys[n.name])], n)
        return [results[n.name] for n in nodes]


def _from_entry(node: Node, entry: Mapping[str, Any], default: dict[str, Any],
                flops: int) -> NodeResult:
    return NodeResult(node.name, node.op, dict(entry["variant"]), default,
                      entry["seconds"], entry["default_seconds"], flops, source="cache")


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

    def _tune(self, graph: Graph, batch: int) -> None:
        if self._tuner is None:
            print(f"\ncnnc: tuning the kernel launches of '{graph.name}' at batch {batch} for "
                  f"{self.backend.device.name} (first use: at most {self.tune_budget:.0f} s, kept "
                  f"in {self.cache.path}; --no-tune skips)", file=self.out, flush=True)
            self._tuner = Tuner(self.backend.device, self.cache, self.tune_budget, out=self.out,
                                progress=self.progress)
        if self._tuner.left() > 0:
            self._tuner.tune_graph(graph, batch)

    def __call__(self, graph: Graph, batch: int) -> dict[str, dict[str, Any]]:
        nodes = [n for n in graph.nodes if tunable(n)]
        keys = {n.name: node_key(self.backend, graph, n, batch) for n in nodes}
        # First use: none of the graph's launches tuned yet on this device. Once some are (by
        # an earlier run's budget, or `cnnc tune`), a run starts at once with what is cached:
        # the launches a budget did not reach wait for `cnnc tune`, not for every later run.
        if self.tune_budget > 0 and all(self.cache.get(k) is None for k in keys.values()):
            self._tune(graph, batch)
        ctx = BindContext(graph, batch, self.backend.target)
        chosen: dict[str, dict[str, Any]] = {}
        for n in nodes:
            entry = self.cache.get(keys[n.name])
            if entry is None:
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
