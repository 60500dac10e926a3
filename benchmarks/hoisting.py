"""What hoisting the weight-only launches out of the forward pass saves, per spec and batch.

    .venv/bin/python benchmarks/hoisting.py [SPEC ...] [--batch 1 8 256] [--runs 30]
                                            [--device SEL]

The same compiled executable (cnnc.compile's, tuned kernels from the cache) run two ways, taking
turns run by run: as it runs now (the folded batch norms, Winograd filter transforms and kernel
transposes computed once, when the weights change) and with those launches forced into every
run, as every forward pass ran them before. The run is the bound executable's (input upload,
the launches, read-back). Prints the launches per run each way, the medians and their ratio;
the CPU and the load average first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch_overhead import cpu_name

import cnnc


def _spec(name: str) -> str:
    path = ROOT / "specs" / f"{name}.yaml"
    return str(path) if path.exists() else name


def _medians(exe, feeds, fetch, runs: int) -> dict[str, float]:
    """Median seconds of a run as it is now and with the hoisted launches in every run."""
    def hoisted():
        exe.run(feeds, fetch)

    def every_run():
        exe._prepared = -1  # the weight-only launches run again, as before hoisting
        exe.run(feeds, fetch)

    tasks = {"hoisted": hoisted, "every": every_run}
    times: dict[str, list[float]] = {k: [] for k in tasks}
    for fn in tasks.values():
        fn()
    for _ in range(runs):
        for name, fn in tasks.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=["mobilenet_mini", "mobilenetv3_mini",
                                                     "efficientnet_mini", "shufflenet_mini"])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 256])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"median of {args.runs} interleaved runs")
    print("| spec | batch | launches per run (hoisted / every run) | ms hoisted | ms every run "
          "| speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for spec in args.specs:
        model = cnnc.compile(_spec(spec), backend="opencl", device=args.device)
        for batch in args.batch:
            exe = model.prepare(batch)
            shape = (batch, *model.graph.shape_of(model.graph.inputs[0])[1:])
            feeds = {model.graph.inputs[0]: np.random.default_rng(0).random(shape, np.float32)}
            med = _medians(exe, feeds, list(model.graph.outputs[:1]), args.runs)
            n = len(exe.bound)
            print(f"| {Path(spec).stem} | {batch} | {n} / {n + len(exe.prepare)} | "
                  f"{med['hoisted'] * 1e3:.3f} | {med['every'] * 1e3:.3f} | "
                  f"{med['every'] / med['hoisted']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
