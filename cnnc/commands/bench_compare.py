"""`cnnc bench SPEC --compare`: the tuning cache's kernel variants against the defaults, per
tunable layer (time, GFLOP/s, the variant) and for the whole run, timed in one process."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from cnnc.ir.graph import Graph


def _node_times(exe: Any, nodes: set[str], repeat: int = 5) -> dict[str, float]:
    """Median seconds of each node's launches, each node run alone (its launches back to back)."""
    import pyopencl as cl

    queue = exe.backend.queue
    by_node: dict[str, list[Any]] = {}
    for b in exe.bound:
        if b.node in nodes:
            by_node.setdefault(b.node, []).append(b)
    out = {}
    for node, bound in by_node.items():
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            for b in bound:
                b.enqueue(cl, queue)
            queue.finish()
            times.append(time.perf_counter() - start)
        out[node] = statistics.median(times)
    return out


def compare(graph: Graph, args: argparse.Namespace) -> int:
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.commands.table import format_table
    from cnnc.crosscheck import random_feeds
    from cnnc.initializers import initial_values
    from cnnc.tune.cache import TuningCache
    from cnnc.tune.space import default_variant, describe, tunable
    from cnnc.tune.tuner import CachedVariants, gemm_flops

    default = OpenCLBackend(args.device)
    tuned = OpenCLBackend(default.device)
    tuned.choose_variants = CachedVariants(tuned, TuningCache.default())
    feeds = random_feeds(graph, args.batch, 0)
    fetch = list(graph.outputs[:1])
    exes = []
    for backend in (default, tuned):
        backend.init_state(graph.state, initial_values(graph.state, 0))
        exe = backend.compile(graph, args.batch)
        exe.run(feeds, fetch, step=0)
        exes.append(exe)
    chosen = tuned.choose_variants(graph, args.batch)
    # Whole runs, interleaved: the other processes on a shared machine disturb both alike.
    runs: list[list[float]] = [[], []]
    for step in range(args.runs):
        for i, exe in enumerate(exes):
            t0 = time.perf_counter()
            exe.run(feeds, fetch, step=step + 1)
            runs[i].append(time.perf_counter() - t0)
    nodes = [n for n in graph.nodes if tunable(n)]
    names = {n.name for n in nodes}
    per_node = [_node_times(exe, names) for exe in exes]
    ctx = BindContext(graph, args.batch, default.target)
    what = "training step" if args.train else "forward pass"
    print(f"{graph.name}: {what} at batch {args.batch} on {default.device.describe()}, tuned "
          f"variants (tuning cache: {len(chosen)} of {len(nodes)} launches) against defaults")
    rows = []
    for n in nodes:
        t_d, t_t = per_node[0].get(n.name), per_node[1].get(n.name)
        if not t_d or not t_t:
            continue
        g = gemm_flops(n, ctx) / 1e9
        v_d = describe(default_variant(n, ctx))
        v_t = describe(chosen[n.name]) if n.name in chosen else "(default)"
        rows.append([n.name, n.op, f"{g:.2f}", v_d, f"{t_d * 1e3:.2f}", f"{g / t_d:.1f}", v_t,
                     f"{t_t * 1e3:.2f}", f"{g / t_t:.1f}", f"{t_d / t_t:.2f}x"])
    head = ["node", "op", "GFLOP", "default", "ms", "GFLOP/s", "tuned", "ms", "GFLOP/s",
            "speedup"]
    print("\n".join(format_table(head, rows, right={2, 4, 5, 7, 8, 9})))
    t_d, t_t = statistics.median(runs[0]), statistics.median(runs[1])
    print(f"whole {what}, median of {args.runs} interleaved runs: default {t_d * 1e3:.1f} ms, "
          f"tuned {t_t * 1e3:.1f} ms ({t_d / t_t:.2f}x); {args.batch / t_t:.0f} images/s tuned")
    return 0
