"""A spec's kernel variants timed against each other in one process, interleaved: what the
tuner's choice of one node is worth, without the tuner's per-variant timing (a few runs per
variant, minutes apart between processes, which on a shared machine can turn a 1.4x gain into a
loss).

    .venv/bin/python benchmarks/variants.py SPEC --nodes NODE[:I,J,...] ... [--batch 256]
        [--train] [--rounds 40] [--variant NODE=JSON ...]
    .venv/bin/python benchmarks/variants.py SPEC --sets [--set NAME=NODE=JSON ...] [--batch 256]
        [--train] [--rounds 20] [--warm-calls 3]

--nodes: each named node alone (a one-node graph, data on the device, as the tuner's
Tuner._time binds it) under the variants I, J, ... of its space (cnnc/tune/space.py
variant_space; all without a list), and the --variant ones given as JSON; per round every
variant's launches run once, in reversed order every other round. --list prints the spaces.
--sets: the whole graph under the tuning cache's variants ("cache") and under each --set (the
cache's variants with NODE's replaced by JSON; {} for its default; a set's several nodes as
repeated --set NAME=...); per round each executable runs --warm-calls untimed calls and one
timed. Printed: per variant or set the median and the minimum of the rounds, and the ratio of
the first's median to its median (>1: faster than the first). The machine's load average is
printed before and after: compare ratios measured in one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import cnnc
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.crosscheck import random_feeds, single_node_graph
from cnnc.initializers import initial_values
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.tune.cache import TuningCache
from cnnc.tune.gate import random_values
from cnnc.tune.space import describe, tunable, tuning_graph, variant_space
from cnnc.tune.tuner import CachedVariants


def _interleaved(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each of `runs` once per round, in reversed order every other round: their times."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(runs[name]())
    return times


def _report(times: dict[str, list[float]], batch: int) -> None:
    first = statistics.median(next(iter(times.values())))
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:48} median {med * 1e3:8.3f} ms  min {min(ts) * 1e3:8.3f} ms  "
              f"{batch / med:8.0f} img/s  {first / med:5.2f}x", flush=True)


def _launches(backend: OpenCLBackend, exe: Any) -> Callable[[], float]:
    import pyopencl as cl

    def once() -> float:
        start = time.perf_counter()
        for b in exe.bound:
            b.enqueue(cl, backend.queue)
        backend.queue.finish()
        return time.perf_counter() - start
    return once


def time_nodes(graph: Any, backend: OpenCLBackend, args: argparse.Namespace) -> None:
    ctx = BindContext(graph, args.batch, backend.target)
    extra: dict[str, list[dict[str, Any]]] = {}
    for text in args.variant:
        name, _, variant = text.partition("=")
        extra.setdefault(name, []).append(json.loads(variant))
    for item in args.nodes:
        name, _, picks = item.partition(":")
        node = next((n for n in graph.nodes if n.name == name), None)
        if node is None or not tunable(node):
            raise SystemExit(f"variants.py: no tunable node '{name}' in {args.spec} "
                             f"(tunable: {', '.join(n.name for n in graph.nodes if tunable(n))})")
        space = variant_space(node, ctx)
        chosen = range(len(space)) if not picks else [int(i) for i in picks.split(",")]
        variants = [(f"{i:2d} {describe(space[i])}", space[i]) for i in chosen]
        # numbered: two --variant ones that describe() spells alike (keys it does not show)
        # would otherwise share a label, and the second would silently replace the first
        variants += [(f"x{j:<2d}{describe(v)}", v) for j, v in enumerate(extra.get(name, []))]
        g1 = single_node_graph(graph, node, args.batch)
        values = random_values(g1, args.batch)
        runs = {}
        for label, variant in variants:
            backend.choose_variants = lambda g, b, v=dict(variant), n=name: {n: v}
            backend.init_state(g1.state, {s.name: values[s.name] for s in g1.state})
            exe = backend.compile(g1, args.batch)
            exe.run({n: values[n] for n in g1.inputs}, [], step=0)
            runs[label] = _launches(backend, exe)
        print(f"{name} ({node.op}), its launches alone, {args.rounds} rounds:", flush=True)
        _report(_interleaved(runs, args.rounds), args.batch)


def time_sets(graph: Any, backend: OpenCLBackend, args: argparse.Namespace) -> None:
    cached = CachedVariants(backend, TuningCache.default())(graph, args.batch)
    sets: dict[str, dict[str, dict[str, Any]]] = {"cache": {}}
    for text in args.set:
        name, node, variant = text.split("=", 2)
        sets.setdefault(name, {})[node] = json.loads(variant)
    feeds = random_feeds(graph, args.batch, 0)
    fetch = list(graph.outputs[:1])
    runs = {}
    for name, over in sets.items():
        chosen = {k: v for k, v in {**cached, **over}.items() if v}
        backend.choose_variants = lambda g, b, c=chosen: c
        backend.init_state(graph.state, initial_values(graph.state, 0))
        exe = backend.compile(graph, args.batch)
        exe.run(feeds, fetch, step=0)

        def once(exe: Any = exe) -> float:
            for _ in range(args.warm_calls):
                exe.run(feeds, fetch, step=0)
            start = time.perf_counter()
            exe.run(feeds, fetch, step=0)
            return time.perf_counter() - start
        runs[name] = once
    print("the cache's variants: " + ", ".join(f"{k} {describe(v)}" for k, v in cached.items()))
    what = "training steps" if args.train else "forward passes"
    print(f"whole {what}, {args.rounds} rounds:", flush=True)
    _report(_interleaved(runs, args.rounds), args.batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--train", action="store_true", help="the training step's graph")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--device")
    parser.add_argument("--nodes", nargs="*", default=[], metavar="NODE[:I,J]")
    parser.add_argument("--variant", action="append", default=[], metavar="NODE=JSON")
    parser.add_argument("--list", action="store_true", help="print the nodes' spaces, time none")
    parser.add_argument("--sets", action="store_true", help="whole passes under variant sets")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=NODE=JSON")
    parser.add_argument("--warm-calls", type=int, default=3)
    args = parser.parse_args()
    spec = cnnc.load_spec(args.spec)
    graph = training_graph(spec) if args.train else inference_graph(spec)
    device = select_device(args.device)
    backend = OpenCLBackend(device)
    if args.list:
        g = tuning_graph(graph)
        ctx = BindContext(g, args.batch, backend.target)
        for n in g.nodes:
            if tunable(n) and (not args.nodes or n.name in {x.split(":")[0] for x in args.nodes}):
                print(f"{n.name} ({n.op})")
                for i, v in enumerate(variant_space(n, ctx)):
                    print(f"  {i:2d} {describe(v):44} {json.dumps(v)}")
        return
    print(f"{spec.name} at batch {args.batch} on {device.describe()}; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    if args.sets:
        time_sets(graph, backend, args)
    else:
        time_nodes(tuning_graph(graph), backend, args)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
