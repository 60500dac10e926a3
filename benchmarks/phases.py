"""Strided input gradients: the phases kernel (the default) against the direct one, in a whole
training step of a spec (default specs/resnet_mini.yaml), in one process.

    .venv/bin/python benchmarks/phases.py [--spec FILE] [--batch 128 32] [--repeat 15]
        [--device SEL]

Two executables of the same training graph, one with every strided conv2d_grad_input on
{"algo": "direct"} (the kernel before phases), one on the defaults; each strided input
gradient's launches timed alone (median of --repeat, the two executables interleaved so the
other processes of a shared machine disturb both alike), then whole steps, interleaved.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import cnnc
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.commands.bench_compare import _node_times
from cnnc.crosscheck import random_feeds
from cnnc.initializers import initial_values
from cnnc.passes.pipeline import training_graph
from cnnc.tune.space import default_variant, describe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(Path(__file__).parents[1] / "specs" /
                                             "resnet_mini.yaml"))
    parser.add_argument("--batch", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--device")
    parser.add_argument("--no-row-groups", action="store_true",
                        help="both kernels with the driver's work-groups (row_groups 0)")
    args = parser.parse_args()
    spec = cnnc.load_spec(args.spec)
    graph = training_graph(spec)
    device = select_device(args.device)
    print(f"{spec.name}: training step on {device.describe()}; load average "
          f"{os.getloadavg()[0]:.2f}")
    for batch in args.batch:
        backends = [OpenCLBackend(device), OpenCLBackend(device)]
        ctx = BindContext(graph, batch, backends[0].target)
        strided = [n for n in graph.nodes if n.op == "conv2d_grad_input"
                   and default_variant(n, ctx)["algo"] == "phases"]
        extra = {"row_groups": 0} if args.no_row_groups else {}
        direct = {n.name: {**default_variant(n, ctx), "algo": "direct", **extra}
                  for n in strided}
        phases = {n.name: {**default_variant(n, ctx), **extra} for n in strided}
        backends[0].choose_variants = lambda g, b, v=direct: v
        backends[1].choose_variants = lambda g, b, v=phases: v
        feeds = random_feeds(graph, batch, 0)
        exes = []
        for backend in backends:
            backend.init_state(graph.state, initial_values(graph.state, 0))
            exe = backend.compile(graph, batch)
            exe.run(feeds, [], step=0)
            exes.append(exe)
        names = {n.name for n in strided}
        samples: list[dict[str, list[float]]] = [{}, {}]
        for _ in range(args.repeat):
            for i, exe in enumerate(exes):
                for name, t in _node_times(exe, names, repeat=1).items():
                    samples[i].setdefault(name, []).append(t)
        steps: list[list[float]] = [[], []]
        for step in range(max(args.repeat // 3, 3)):
            for i, exe in enumerate(exes):
                t0 = time.perf_counter()
                exe.run(feeds, [], step=step + 1)
                steps[i].append(time.perf_counter() - t0)
        print(f"batch {batch}: {'node':18s} {'kernel':10s} {'direct ms':>9s} {'phases ms':>9s} "
              f"{'speedup':>7s}")
        for n in strided:
            t_d = statistics.median(samples[0][n.name])
            t_p = statistics.median(samples[1][n.name])
            k = "x".join(map(str, n.attrs["kernel_size"]))
            s = "x".join(map(str, n.attrs["strides"]))
            print(f"{'':9s}{n.name[:18]:18s} {k + '/' + s:10s} {t_d * 1e3:9.2f} "
                  f"{t_p * 1e3:9.2f} {t_d / t_p:6.2f}x  ({describe(phases[n.name])})")
        t_d, t_p = statistics.median(steps[0]), statistics.median(steps[1])
        print(f"{'':9s}whole step (median, interleaved): direct {t_d * 1e3:.1f} ms, phases "
              f"{t_p * 1e3:.1f} ms ({t_d / t_p:.2f}x)")


if __name__ == "__main__":
    main()
