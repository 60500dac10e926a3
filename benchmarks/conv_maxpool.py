"""Convolutions pooling as they store (conv2d_maxpool) against the convolution and pool.cl's
pooling apart, whole forward passes side by side in one process.

    .venv/bin/python benchmarks/conv_maxpool.py [SPEC ...] [--device SEL] [--batch 256 1]
        [--rounds 5] [--runs 10] [--profile]

For each spec and batch, the inference graph with fuse_conv_maxpool and without it, compiled on
one backend with the tuning cache's variants installed (`cnnc tune`; the fused node runs its
convolution's variant, so both graphs run the same convolution kernels), timed in interleaved
rounds: each round the median of --runs runs of one, then of the other. Prints each round's
times and the median ratio (unfused / fused: above 1, the fusion is faster), with the load
average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.crosscheck import random_feeds
from cnnc.frontend.spec import load_spec
from cnnc.initializers import initial_values
from cnnc.passes.pipeline import inference_graph, inference_pipeline, run_pipeline
from cnnc.tune.tuner import install


def _median_run(exe, feeds, fetch, runs: int) -> float:
    times = []
    for step in range(runs):
        t0 = time.perf_counter()
        exe.run(feeds, fetch, step=step)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare(spec: str, batch: int, device: str | None, rounds: int, runs: int,
            profile: bool = False) -> None:
    graph = load_spec(spec)
    fused = inference_graph(graph)
    unfused = run_pipeline(graph, [p for p in inference_pipeline()
                                   if p.name != "fuse_conv_maxpool"])
    backend = OpenCLBackend(device)
    install(backend)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exes = {}
    for label, g in (("unfused", unfused), ("fused", fused)):
        exe = backend.compile(g, batch)
        feeds, fetch = random_feeds(g, batch, 0), list(g.outputs[:1])
        for _ in range(10):  # past the launches' wake-up after idle time
            exe.run(feeds, fetch, step=0)
        exes[label] = (exe, feeds, fetch)
    ratios = []
    print(f"{graph.name} batch {batch} (load {os.getloadavg()[0]:.2f}):")
    for r in range(rounds):
        t = {label: _median_run(*exes[label], runs) for label in exes}
        ratios.append(t["unfused"] / t["fused"])
        print(f"  round {r}: unfused {t['unfused'] * 1e3:7.2f} ms  fused "
              f"{t['fused'] * 1e3:7.2f} ms  ratio {ratios[-1]:.3f}", flush=True)
    print(f"  median ratio {statistics.median(ratios):.3f} (load {os.getloadavg()[0]:.2f})")
    if profile:
        _pair_profile(fused, exes, rounds)


def _pair_profile(fused, exes, rounds: int) -> None:
    """Each fused node's launches against its convolution's and pooling's in the unfused graph,
    each launch timed alone (bench.py's profile: best of a few samples), the best of `rounds`
    profiles: a shared machine's load slows runs down, it does not speed one up."""
    from cnnc.commands.bench import _profile

    pairs = {n.name: n.inputs[0] for n in exes["unfused"][0].graph.nodes
             if n.name in fused.node_map and fused.node(n.name).op == "conv2d_maxpool"}
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for label in exes:
            per_node: dict[str, float] = {}
            for seconds, node, _kernel in _profile(exes[label][0]):
                per_node[node] = per_node.get(node, 0.0) + seconds
            for pool, conv in pairs.items():
                t = per_node.get(pool, 0.0) + (per_node.get(conv, 0.0) if label == "unfused"
                                               else 0.0)
                best[(label, pool)] = min(best.get((label, pool), float("inf")), t)
    print(f"  launches alone, best of {rounds} (load {os.getloadavg()[0]:.2f}):")
    for pool, conv in pairs.items():
        u, f = best[("unfused", pool)], best[("fused", pool)]
        print(f"    {conv} + {pool}: {u * 1e3:7.2f} ms -> {f * 1e3:7.2f} ms  ({u / f:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=["fashion", "fashion-plus"])
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--profile", action="store_true",
                        help="also each fused layer's launches alone against the unfused pair's")
    args = parser.parse_args()
    for spec in args.specs:
        for batch in args.batch:
            compare(spec, batch, args.device, args.rounds, args.runs, args.profile)


if __name__ == "__main__":
    main()
