"""A spec's forward pass with and without one inference fusion pass, side by side in one
process, each tuned (the tuning cache; Model.tune fills what it lacks within --budget): the
machinery of benchmarks/depthwise_layer_norm.py and benchmarks/mbconv.py, which name the pass.

Each round runs each model --warm untimed calls (after a pause a CPU's first calls run slower),
then --runs timed ones, the order alternating from round to round; printed: the median and the
minimum of the rounds' medians, and their ratio unfused / fused (>1: the fusion pays), with the
load average. The two models' outputs are checked to agree first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import cnnc
from cnnc.passes import pipeline


def _model(spec: str, device: str, fused: bool, batch: int, budget: float, fusion: str, op: str):
    full = pipeline.inference_pipeline
    if not fused:
        pipeline.inference_pipeline = lambda: [p for p in full() if p.name != fusion]
    try:
        model = cnnc.compile(spec, backend="opencl", device=device, seed=0)
    finally:
        pipeline.inference_pipeline = full
    ops = [n.op for n in model.graph.nodes]
    assert (ops.count(op) > 0) is fused, ops
    model.tune(batch, budget=budget)
    return model


def main(fusion: str, op: str, spec: str, doc: str) -> None:
    """Time `spec`'s forward pass with and without the inference pass `fusion` (which makes
    `op` nodes), as the calling script's `doc` says."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--spec", default=spec)
    parser.add_argument("--device", default="0:0")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--budget", type=float, default=120.0)
    args = parser.parse_args()
    models = {name: _model(args.spec, args.device, name == "fused", args.batch, args.budget,
                          fusion, op)
              for name in ("fused", "unfused")}
    x = None
    exes = {}
    for name, model in models.items():
        shape = model.graph.shape_of(model.graph.inputs[0])[1:]
        x = np.random.default_rng(0).standard_normal((args.batch, *shape)).astype(np.float32)
        exe = model.prepare(args.batch)
        feeds, fetch = {model.graph.inputs[0]: x}, list(model.graph.outputs)
        exes[name] = (exe, feeds, fetch)
    out = {name: exe.run(feeds, fetch) for name, (exe, feeds, fetch) in exes.items()}
    for key in out["fused"]:
        np.testing.assert_allclose(out["fused"][key], out["unfused"][key], rtol=1e-3, atol=1e-5)
    medians: dict[str, list[float]] = {name: [] for name in exes}
    for r in range(args.rounds):
        for name, (exe, feeds, fetch) in (exes.items() if r % 2 == 0
                                          else reversed(exes.items())):
            for _ in range(args.warm):
                exe.run(feeds, fetch)
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                exe.run(feeds, fetch)
                times.append(time.perf_counter() - t0)
            medians[name].append(statistics.median(times))
    med = {n: statistics.median(v) for n, v in medians.items()}
    low = {n: min(v) for n, v in medians.items()}
    for n in exes:
        print(f"{n:8s} median {med[n] * 1e3:7.3f} ms  min {low[n] * 1e3:7.3f} ms")
    print(f"unfused / fused: median {med['unfused'] / med['fused']:.3f}, "
          f"min {low['unfused'] / low['fused']:.3f}  (batch {args.batch}, load "
          f"{' '.join(os.getloadavg().__repr__()[1:-1].split(', '))}, "
          f"{time.strftime('%H:%M', time.gmtime())} UTC)")

