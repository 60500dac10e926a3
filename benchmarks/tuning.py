"""A training step (or forward pass) with three kernel choices, side by side in one process.

    .venv/bin/python benchmarks/tuning.py [SPEC] [--batch 32] [--forward] [--runs 10]

  avx512-defaults  the tiles chosen before device-derived defaults (8 x 16 x 2 blocks on every
                   CPU: sized for AVX-512's 32 registers)
  device-defaults  the defaults from the device's native vector width (tiling.py)
  tuned            the tuning cache's variants (`cnnc tune SPEC --train` first)

Runs are interleaved (shared machines disturb all three alike); medians and ratios printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.crosscheck import random_feeds
from cnnc.frontend.spec import load_spec
from cnnc.initializers import initial_values
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.tune.cache import TuningCache
from cnnc.tune.tuner import CachedVariants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="fashion")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--forward", action="store_true")
    parser.add_argument("--device")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    graph = inference_graph(spec) if args.forward else training_graph(spec)
    old = OpenCLBackend(args.device)
    old.target = replace(old.target, native_vector=16)
    device = OpenCLBackend(old.device)
    tuned = OpenCLBackend(old.device)
    tuned.choose_variants = CachedVariants(tuned, TuningCache.default())
    names = ("avx512-defaults", "device-defaults", "tuned")
    feeds = random_feeds(graph, args.batch, 0)
    fetch = list(graph.outputs[:1])
    exes = []
    for b in (old, device, tuned):
        b.init_state(graph.state, initial_values(graph.state, 0))
        exe = b.compile(graph, args.batch)
        exe.run(feeds, fetch, step=0)
        exes.append(exe)
    load = os.getloadavg()[0]
    times: list[list[float]] = [[] for _ in exes]
    for step in range(args.runs):
        for i, exe in enumerate(exes):
            t0 = time.perf_counter()
            exe.run(feeds, fetch, step=step + 1)
            times[i].append(time.perf_counter() - t0)
    what = "forward pass" if args.forward else "training step"
    print(f"{spec.name} {what}, batch {args.batch}, {old.device.describe()}; load average "
          f"{load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (shared machine)")
    base = statistics.median(times[0])
    for name, t in zip(names, times):
        m = statistics.median(t)
        print(f"  {name:16s} median {m * 1e3:8.1f} ms  min {min(t) * 1e3:8.1f} ms  "
              f"{args.batch / m:6.0f} img/s  {base / m:5.2f}x")


if __name__ == "__main__":
    main()
