"""A forward pass's convolutions in reduction parts (conv2d.cl -D SPLIT, the tuner's "split" form
where the output has few pixels) against the same register blocks in one part, in one process.

    .venv/bin/python benchmarks/forward_split.py [--spec fashion] [--batch 1] [--rounds 20]
                                                 [--warm-calls 10] [--splits 2 4] [--device SEL]

Executables of the same graph, one per variant set, with the same weights: "tuned" (the tuning
cache's variants, else the defaults: a CPU's smallest maps in parts), "unsplit" and per --splits
P "split P" (every convolution the tuner would offer parts or one part: the tuned direct
variant, else the default direct block, in one part or P parts). Each round
times each set's launches alone per node (the median of the rounds), then whole runs: per set,
--warm-calls untimed runs and one timed (a stream of requests' pace), the sets taking turns so
that the shared machine's load touches all alike, in reversed order every other round. Medians
and minima over --rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import cnnc
from cnnc.backends.opencl.algorithms import _forward_forms
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.commands.bench_compare import _node_times
from cnnc.crosscheck import random_feeds
from cnnc.initializers import initial_values
from cnnc.ir.conv_maxpool import parts
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.cache import TuningCache
from cnnc.tune.space import as_layer, describe, tunable
from cnnc.tune.tuner import CachedVariants

CONV_POOLS = ("conv2d_maxpool", "conv2d_avgpool")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="fashion")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warm-calls", type=int, default=10)
    parser.add_argument("--splits", nargs="*", type=int, default=[2, 4])
    parser.add_argument("--device")
    args = parser.parse_args()
    spec = cnnc.load_spec(args.spec)
    graph = inference_graph(spec)
    device = select_device(args.device)
    print(f"{spec.name}: forward pass at batch {args.batch} on {device.describe()}; "
          f"load average {os.getloadavg()[0]:.2f}")
    tuned = OpenCLBackend(device)
    chooser = CachedVariants(tuned, TuningCache.default())
    tuned.choose_variants = chooser
    ctx = BindContext(graph, args.batch, tuned.target)
    chosen = dict(chooser(graph, args.batch))
    # convolutions, and those a pooling reads in its store (conv2d_maxpool: their convolution
    # in parts stores its map for pool.cl, as any GEMM variant does)
    def conv_of(n):
        if n.op in CONV_POOLS:
            return parts(n, tuple(graph.shape_of(x) for x in n.inputs))[0]
        return as_layer(n)

    few = [n for n in graph.nodes if (tunable(n) or n.op in CONV_POOLS)
           and conv_of(n).op == "conv2d"
           and any("split" in f for f in _forward_forms(conv_of(n), ctx))]
    sets = {"tuned": chosen}
    for split in (1, *args.splits):
        variants = dict(chosen)
        for n in few:
            base = chosen.get(n.name, {})
            if base.get("algo", "direct") != "direct":
                base = {}  # the direct algorithm's default block
            variants[n.name] = {**base, "algo": "direct", "split": split}
        sets[f"split {split}" if split > 1 else "unsplit"] = variants
    feeds = random_feeds(graph, args.batch, 0)
    fetch = list(graph.outputs[:1])
    exes, outs = {}, {}
    for label, variants in sets.items():
        backend = tuned if label == "tuned" else OpenCLBackend(device)
        if label != "tuned":
            backend.choose_variants = lambda g, b, v=variants: v
        backend.init_state(graph.state, initial_values(graph.state, 0))
        exe = backend.compile(graph, args.batch)
        outs[label] = exe.run(feeds, fetch, step=0)
        exes[label] = exe
    ref = outs["tuned"]
    for label, out in outs.items():
        diff = max(float(np.max(np.abs(np.asarray(out[k]) - np.asarray(ref[k])))) for k in fetch)
        print(f"  {label}: max |difference| from the tuned output {diff:.2e}")
    names = {n.name for n in few}
    samples: dict[str, dict[str, list[float]]] = {label: {} for label in exes}
    runs: dict[str, list[float]] = {label: [] for label in exes}
    for r in range(args.rounds):
        # the sets' order reversed every other round: the first set after the whole runs of
        # the round before meets colder caches (identical sets differed 1.1-1.5x by place)
        order = list(exes.items()) if r % 2 == 0 else list(reversed(exes.items()))
        for label, exe in order:
            for name, t in _node_times(exe, names, repeat=1).items():
                samples[label].setdefault(name, []).append(t)
        for label, exe in order:
            for _ in range(args.warm_calls):
                exe.run(feeds, fetch, step=r)
            t0 = time.perf_counter()
            exe.run(feeds, fetch, step=r)
            runs[label].append(time.perf_counter() - t0)
    for n in few:
        print(f"  {n.name} ({n.op}), launches alone, median of {args.rounds}:")
        base = statistics.median(samples["tuned"][n.name])
        for label in exes:
            t = statistics.median(samples[label][n.name])
            what = describe(sets[label].get(n.name) or {"algo": "default"})
            print(f"    {label:10s} {t * 1e6:8.1f} us  {base / t:5.2f}x  ({what})")
    print(f"  whole runs after {args.warm_calls} warm calls, interleaved, {args.rounds} rounds:")
    base = statistics.median(runs["tuned"])
    for label, t in runs.items():
        print(f"    {label:10s} median {statistics.median(t) * 1e3:6.3f} ms  min "
              f"{min(t) * 1e3:6.3f} ms  {base / statistics.median(t):5.2f}x")
    print(f"  load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
