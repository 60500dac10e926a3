"""What conv2d_forward's runs of taps (kernels/conv2d.cl, TAP_RUNS) are worth: whole forward
passes with them and without, interleaved in one process.

    .venv/bin/python benchmarks/tap_runs.py [SPEC ...] [--batch 256] [--rounds 30]
                                            [--warm-calls 3] [--device SEL]

Each spec is compiled twice under the tuning cache's variants ('cached': the same variants both
ways, since build options are not part of a tuning key): once as cnnc builds it, once with
-D TAP_RUNS=0 added to every conv2d_forward program (a tap by tap reduction, the kernel before
the runs). Per round each executable runs --warm-calls untimed calls and one timed, in reversed
order every other round. Prints per spec the medians and minima and the speed-up (time without
the runs over time with them); the CPU and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch_overhead import cpu_name

import cnnc
from cnnc.backends.opencl import program


@contextmanager
def tap_runs_off() -> Iterator[None]:
    """Every conv2d_forward program built meanwhile gets -D TAP_RUNS=0 (its own program: the
    options are the program cache's key)."""
    original = program.build_options

    def options(defines: Any) -> tuple[str, ...]:
        if defines.get("CONV2D_FORWARD"):
            defines = {**defines, "TAP_RUNS": 0}
        return original(defines)

    program.build_options = options
    try:
        yield
    finally:
        program.build_options = original


def _spec(name: str) -> str:
    path = ROOT / "specs" / f"{name}.yaml"
    return str(path) if path.exists() else name


def _timed(exe: Any, feeds: dict[str, np.ndarray], fetch: list[str],
           warm: int) -> Callable[[], float]:
    def once() -> float:
        for _ in range(warm):
            exe.run(feeds, fetch)
        start = time.perf_counter()
        exe.run(feeds, fetch)
        return time.perf_counter() - start
    return once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*",
                        default=["resnet_mini", "fashion-plus", "fashion-best", "unet_mini"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warm-calls", type=int, default=3)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"batch {args.batch}, {args.rounds} interleaved rounds")
    print("| spec | ms without runs (median / min) | ms with runs (median / min) | speed-up |")
    print("|---|---:|---:|---:|")
    for spec in args.specs:
        runs: dict[str, Callable[[], float]] = {}
        for name in ("without", "with"):
            model = cnnc.compile(_spec(spec), backend="opencl", device=args.device)
            graph = model.graph
            shape = (args.batch, *graph.shape_of(graph.inputs[0])[1:])
            feeds = {graph.inputs[0]: np.random.default_rng(0).random(shape, np.float32)}
            fetch = list(graph.outputs[:1])
            if name == "without":
                with tap_runs_off():
                    exe = model.prepare(args.batch)
                    exe.run(feeds, fetch)
            else:
                exe = model.prepare(args.batch)
                exe.run(feeds, fetch)
            runs[name] = _timed(exe, feeds, fetch, args.warm_calls)
        times: dict[str, list[float]] = {k: [] for k in runs}
        order = list(runs)
        for r in range(args.rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                times[name].append(runs[name]())
        off, on = times["without"], times["with"]
        print(f"| {Path(spec).stem} | {statistics.median(off) * 1e3:.3f} / {min(off) * 1e3:.3f} "
              f"| {statistics.median(on) * 1e3:.3f} / {min(on) * 1e3:.3f} "
              f"| {statistics.median(off) / statistics.median(on):.2f}x |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
