"""The implicit GEMM's register blocks that divide a few-pixel map's rows (tiling.exact_row_tile,
the default there: 7x16x4 on a 7x7 map at batch 1, where register_tile's 8 rows compute 56 rows
for 49) against register_tile's block, in the forward pass of a spec, in one process.

    .venv/bin/python benchmarks/exact_rows.py [--spec fashion] [--batch 1] [--rounds 20]
                                              [--warm-calls 10] [--device SEL]

Two executables of the same graph with the same weights: "register" (the tuning cache's variants,
with every direct convolution that has an exact block in register_tile's block: its forward
parts as the default's) and "exact" (those convolutions in the exact block instead). Each round runs
each set --warm-calls times untimed and once timed (a stream of requests' pace), then once more
on a profiling queue for each launch's time inside the pass (its weights as the launches before
left the caches); the sets take turns, in reversed order every other round, so that the shared
machine's load touches both alike. Prints the medians and minima over --rounds of the pass and
the median of each changed node's launches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pyopencl as cl

import cnnc
from cnnc.backends.opencl.algorithms import chosen_algorithm
from cnnc.backends.opencl.bind_layers import conv2d_gemm
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.tiling import exact_row_tile, register_tile
from cnnc.crosscheck import random_feeds
from cnnc.initializers import initial_values
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.cache import TuningCache
from cnnc.tune.space import as_layer, tuning_graph
from cnnc.tune.tuner import CachedVariants


def _sets(graph, batch: int, backend: OpenCLBackend) -> tuple[dict, dict, list[str]]:
    """The register and exact variant sets, and the nodes they differ in."""
    chosen = {k: dict(v) for k, v in CachedVariants(backend, TuningCache.default())(
        graph, batch).items()}
    layers = tuning_graph(graph)  # a conv2d_maxpool as its convolution, under its name
    ctx = BindContext(layers, batch, backend.target)
    register, exact, changed = dict(chosen), dict(chosen), []
    for node in map(as_layer, layers.nodes):  # a folded batch norm's node as its convolution
        if node.op != "conv2d" or node.name not in graph.node_map:
            continue
        variant = chosen.get(node.name, {})
        if chosen_algorithm(node, BindContext(layers, batch, backend.target,
                                              {node.name: variant})).name != "direct":
            continue
        gemm = conv2d_gemm(node, ctx, {})
        tile = exact_row_tile(gemm.rows, gemm.cols, backend.target)
        if tile is None:
            continue
        base = {k: v for k, v in variant.items() if k not in ("MR", "VW", "NV")}
        register[node.name] = {**base, "algo": "direct",
                              **register_tile(gemm.cols, backend.target)}
        exact[node.name] = {**base, "algo": "direct", **tile}
        changed.append(node.name)
    return register, exact, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="fashion")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warm-calls", type=int, default=10)
    parser.add_argument("--device")
    args = parser.parse_args()
    graph = inference_graph(cnnc.load_spec(args.spec))
    backend = OpenCLBackend(select_device(args.device))
    register, exact, changed = _sets(graph, args.batch, backend)
    print(f"{graph.name}: forward pass at batch {args.batch} on {backend.device.describe()}; "
          f"load average {os.getloadavg()[0]:.2f}; exact blocks for {', '.join(changed)}")
    if not changed:
        return
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exes = {}
    for name, variants in (("register", register), ("exact", exact)):
        backend.choose_variants = lambda g, b, v=variants: v
        exes[name] = backend.compile(graph, args.batch)
    feeds = random_feeds(graph, args.batch, 0)
    fetch = list(graph.outputs[:1])
    outs = [exe.run(feeds, fetch)[fetch[0]] for exe in exes.values()]
    print(f"max |difference| of the outputs: {float(np.abs(outs[0] - outs[1]).max()):.2e}")
    profiling = cl.CommandQueue(backend.device.context,
                                properties=cl.command_queue_properties.PROFILING_ENABLE)
    plain = backend.queue
    passes: dict[str, list[float]] = {name: [] for name in exes}
    launches: dict[str, dict[str, list[float]]] = {name: {} for name in exes}
    names = list(exes)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            exe = exes[name]
            backend.queue = plain
            for _ in range(args.warm_calls):
                exe.run(feeds, fetch)
            start = time.perf_counter()
            exe.run(feeds, fetch)
            passes[name].append(time.perf_counter() - start)
            backend.queue = profiling
            events = [(b.node, b.enqueue(cl, profiling)) for b in exe.bound]
            profiling.finish()
            spent: dict[str, float] = {}
            for node, event in events:
                spent[node] = spent.get(node, 0.0) + event.profile.end - event.profile.start
            for node in changed:
                launches[name].setdefault(node, []).append(spent.get(node, 0.0) / 1e3)
    backend.queue = plain
    print(f"| set | pass median ms | pass min ms | {' | '.join(changed)} (us, median) |")
    print(f"|---|---:|---:|{'---:|' * len(changed)}")
    for name in names:
        cells = " | ".join(f"{statistics.median(launches[name][n]):.1f}" for n in changed)
        print(f"| {name} | {statistics.median(passes[name]) * 1e3:.3f} | "
              f"{min(passes[name]) * 1e3:.3f} | {cells} |")


if __name__ == "__main__":
    main()
