"""Convolutions pooling as they store (conv2d_maxpool) against the convolution and pool.cl's
pooling apart, whole forward passes side by side in one process; with --fusion
fuse_conv_concat, convolutions reading a concatenation (and upsampling) in place
(conv2d_concat) against the copies and the convolution apart.

    .venv/bin/python benchmarks/conv_maxpool.py [SPEC ...] [--device SEL] [--batch 256 1]
        [--rounds 5] [--runs 10] [--profile] [--fusion fuse_conv_maxpool]

For each spec and batch, the inference graph with the fusion's pass and without it, compiled on
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


FUSED_OPS = {"fuse_conv_maxpool": ("conv2d_maxpool", "conv2d_avgpool"),
             "fuse_conv_concat": ("conv2d_concat",)}


def compare(spec: str, batch: int, device: str | None, rounds: int, runs: int,
            profile: bool = False, fusion: str = "fuse_conv_maxpool") -> None:
    graph = load_spec(spec)
    fused = inference_graph(graph)
    unfused = run_pipeline(graph, [p for p in inference_pipeline() if p.name != fusion])
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
        _pair_profile(fused, exes, rounds, FUSED_OPS[fusion])


def _replaced(unfused, fused, name: str) -> list[str]:
    """The unfused graph's nodes a fused node stands for: its own name's and those it reads
    that the fused graph lacks (a pooling's convolution; a convolution's concatenation and
    upsampling)."""
    names = [name]
    for x in unfused.node(name).inputs:
        if x not in fused.node_map and x in unfused.node_map:
            names += _replaced(unfused, fused, x)
    return names


def _pair_profile(fused, exes, rounds: int, ops: tuple[str, ...]) -> None:
    """Each fused node's launches against those of the nodes it stands for in the unfused graph,
    each launch timed alone (bench.py's profile: best of a few samples), the best of `rounds`
    profiles: a shared machine's load slows runs down, it does not speed one up."""
    from cnnc.commands.bench import _profile

    unfused = exes["unfused"][0].graph
    pairs = {n.name: _replaced(unfused, fused, n.name) for n in fused.nodes if n.op in ops}
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for label in exes:
            per_node: dict[str, float] = {}
            for seconds, node, _kernel in _profile(exes[label][0]):
                per_node[node] = per_node.get(node, 0.0) + seconds
            for name, parts in pairs.items():
                t = sum(per_node.get(p, 0.0) for p in (parts if label == "unfused" else [name]))
                best[(label, name)] = min(best.get((label, name), float("inf")), t)
    print(f"  launches alone, best of {rounds} (load {os.getloadavg()[0]:.2f}):")
    for name, parts in pairs.items():
        u, f = best[("unfused", name)], best[("fused", name)]
        print(f"    {' + '.join(reversed(parts))}: {u * 1e3:7.2f} ms -> {f * 1e3:7.2f} ms  "
              f"({u / f:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=["fashion", "fashion-plus"])
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--profile", action="store_true",
                        help="also each fused layer's launches alone against the unfused pair's")
    parser.add_argument("--fusion", choices=list(FUSED_OPS), default="fuse_conv_maxpool",
                        help="the inference pass whose graphs are compared")
    args = parser.parse_args()
    for spec in args.specs:
        for batch in args.batch:
            compare(spec, batch, args.device, args.rounds, args.runs, args.profile,
                    args.fusion)


if __name__ == "__main__":
    main()
