"""The bound executable's launch loops side by side at batch 1: OpenCLExecutable.run's fast
loop (its `_calls`: pyopencl's enqueue called straight from a tuple per launch) against the
general loop (BoundLaunch.enqueue per launch), on `model.predict`, the same executable toggled
round by round in one process, the order alternating:

    .venv/bin/python benchmarks/launch_loop.py [SPEC ...] [--rounds 20] [--runs 50]

Each round runs 10 untimed calls, then --runs timed ones; printed per spec: the median and the
minimum of the rounds' medians and their ratios general / fast (>1: the fast loop pays), with
the load average. The outputs of the two loops are checked to be the same bits.
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


def measure(spec: str, rounds: int, runs: int) -> str:
    import cnnc

    graph = cnnc.load_spec(spec)
    model = cnnc.compile(graph, backend="opencl", seed=0, tune="cached")
    x = np.random.default_rng(0).random((1, *graph.shape_of(graph.inputs[0])[1:]),
                                        dtype=np.float32)
    want = model.predict(x, batch_size=1)
    exe = model.prepare(1)
    fast = exe._calls
    exe._calls = None
    assert np.array_equal(model.predict(x, batch_size=1), want)
    medians: dict[str, list[float]] = {"fast": [], "general": []}
    for r in range(rounds):
        order = [("fast", fast), ("general", None)]
        for name, calls in (order if r % 2 == 0 else order[::-1]):
            exe._calls = calls
            for _ in range(10):
                model.predict(x, batch_size=1)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                model.predict(x, batch_size=1)
                times.append(time.perf_counter() - start)
            medians[name].append(statistics.median(times) * 1e6)
    exe._calls = fast
    med = {k: statistics.median(v) for k, v in medians.items()}
    low = {k: min(v) for k, v in medians.items()}
    return (f"{graph.name} ({len(exe.bound)} launches): fast {med['fast']:.1f} us "
            f"(min {low['fast']:.1f}), general {med['general']:.1f} us "
            f"(min {low['general']:.1f}); general / fast: median "
            f"{med['general'] / med['fast']:.3f}, min {low['general'] / low['fast']:.3f}; "
            f"load {os.getloadavg()[0]:.2f}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)
    specs = args.specs or sorted(str(p) for p in (ROOT / "specs").glob("*.yaml"))
    for spec in specs:
        print(measure(spec, args.rounds, args.runs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
