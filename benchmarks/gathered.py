"""1x1 convolutions reading ShuffleNet's gathers in place (cnnc/ir/gathered.py) against the
gathers they replace, side by side in one process: the inference pipeline with fuse_shuffle's
third rule and without it (its first two rules only: the graph before that rule), on the same
kernels.

    .venv/bin/python benchmarks/gathered.py [SPEC] [--device SEL] [--batch 256] [--pairs 300]

Each pair runs one forward pass of each graph, in alternating order, so that a load drifting
between calls (the machines these run on are shared) hits both alike; printed: the medians and
minima, and the median of the pairs' time ratios (gathers over in place: >1, reading in place
pays), back to back and with a 0.5 s pause before each call (a fifth as many pairs), and each
graph's launches timed alone (the minimum of --alone runs each), with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial

import pyopencl as cl

from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.crosscheck import random_feeds
from cnnc.frontend.spec import load_spec
from cnnc.initializers import initial_values
from cnnc.passes import fuse_shuffle
from cnnc.passes.pipeline import Pass, inference_pipeline, run_pipeline
from cnnc.passes.rewrite import apply_rules
from cnnc.tune.tuner import install

GATHER_RULES = dict(list(fuse_shuffle.RULES.items())[:2])  # without the 1x1 convolutions'


def _passes(in_place: bool) -> list[Pass]:
    return [p if p.name != "fuse_shuffle" or in_place
            else Pass(p.name, partial(apply_rules, rules=GATHER_RULES), p.why)
            for p in inference_pipeline()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec", nargs="?", default="specs/shufflenet_mini.yaml")
    ap.add_argument("--device", default=None)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--alone", type=int, default=30)
    args = ap.parse_args()
    spec = load_spec(args.spec)
    backend = OpenCLBackend(args.device)
    install(backend)
    runs = {}
    for name, in_place in (("gathers", False), ("in place", True)):
        graph = run_pipeline(spec, _passes(in_place))
        backend.init_state(graph.state, initial_values(graph.state, 0))
        exe = backend.compile(graph, args.batch)
        feeds, fetch = random_feeds(graph, args.batch, 0), [graph.outputs[0]]
        for _ in range(5):
            exe.run(feeds, fetch)
        runs[name] = (exe, feeds, fetch)

    def once(name: str) -> float:
        exe, feeds, fetch = runs[name]
        start = time.perf_counter()
        exe.run(feeds, fetch)
        return time.perf_counter() - start

    print(f"{spec.name} at batch {args.batch}, load average {os.getloadavg()[0]:.2f}; launches: "
          + ", ".join(f"{n} {len(r[0].bound)}" for n, r in runs.items()))
    for label, pause, pairs in (("back to back", 0.0, args.pairs),
                                ("after a 0.5 s pause", 0.5, max(args.pairs // 5, 1))):
        times: dict[str, list[float]] = {n: [] for n in runs}
        ratios = []
        for k in range(pairs):
            t = {}
            for name in (("gathers", "in place") if k % 2 == 0 else ("in place", "gathers")):
                if pause:
                    time.sleep(pause)
                t[name] = once(name)
                times[name].append(t[name])
            ratios.append(t["gathers"] / t["in place"])
        print(f"  {label}: " + "; ".join(
            f"{n} median {statistics.median(v) * 1e3:.2f} ms, min {min(v) * 1e3:.2f}"
            for n, v in times.items())
            + f"; median pair ratio {statistics.median(ratios):.3f} ({pairs} pairs)")
    queue = backend.queue
    for name, (exe, _, _) in runs.items():
        total = 0.0
        for b in exe.bound:
            best = float("inf")
            for _ in range(args.alone):
                b.enqueue(cl, queue)
                queue.finish()
                start = time.perf_counter()
                b.enqueue(cl, queue)
                queue.finish()
                best = min(best, time.perf_counter() - start)
            total += best
        print(f"  {name}: its launches alone (min of {args.alone} each) {total * 1e3:.2f} ms")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
