"""Strided convolutions (forward and kernel gradient): the tuned variant (the tuning cache's,
else the default) against the windows copied out (im2col + gemm.cl) with each register block
given, the kernel gradient's direct kernel with other reduction parts, and with one part's
blocks in one work-group waiting for each other every so many pixels (conv2d.cl's SYNC_STEPS),
per node, in one process.

    .venv/bin/python benchmarks/strided.py [--spec FILE] [--batch 256] [--train]
        [--repeat 15] [--device SEL] [--tiles 4x8x2 6x8x2] [--splits 20 40]
        [--sync 0 16 64 256] [--implicit] [--all]

Executables of the same graph are compiled, one per variant set, and each strided node's launches
(--all: every kernel gradient on the direct kernel too) timed alone, interleaved (the other
processes of a shared machine disturb them alike), as the median of --repeat; then whole runs,
interleaved.
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
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.tune.cache import TuningCache
from cnnc.tune.space import as_layer, default_variant, describe, tunable
from cnnc.tune.tuner import CachedVariants

_OPS = ("conv2d", "conv2d_grad_kernel")


def _tile(text: str) -> dict[str, int]:
    mr, vw, nv = map(int, text.split("x"))
    return {"MR": mr, "VW": vw, "NV": nv}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(Path(__file__).parents[1] / "specs" /
                                             "resnet_mini.yaml"))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--device")
    parser.add_argument("--tiles", nargs="*", default=["4x8x2", "6x8x2"])
    parser.add_argument("--splits", nargs="*", type=int, default=[],
                        help="the kernel gradients' direct kernel with these reduction parts")
    parser.add_argument("--sync", nargs="*", type=int, default=[],
                        help="the kernel gradients' direct kernel with a part's blocks in one "
                        "work-group, waiting for each other every so many pixels")
    parser.add_argument("--implicit", action="store_true",
                        help="also every strided forward pass on the implicit GEMM (im2col 0)")
    parser.add_argument("--all", action="store_true",
                        help="every direct kernel gradient, not only the strided ones")
    args = parser.parse_args()
    spec = cnnc.load_spec(args.spec)
    graph = training_graph(spec) if args.train else inference_graph(spec)
    device = select_device(args.device)
    print(f"{spec.name}: {'training step' if args.train else 'forward pass'} at batch "
          f"{args.batch} on {device.describe()}; load average {os.getloadavg()[0]:.2f}")
    tuned = OpenCLBackend(device)
    chooser = CachedVariants(tuned, TuningCache.default())
    tuned.choose_variants = chooser
    ctx = BindContext(graph, args.batch, tuned.target)
    chosen = dict(chooser(graph, args.batch))
    strided = [n for n in graph.nodes if tunable(n) and as_layer(n).op in _OPS
               and (max(as_layer(n).attrs["strides"]) > 1
                    or args.all and n.op == "conv2d_grad_kernel"
                    and chosen.get(n.name, {"algo": "direct"})["algo"] == "direct")]
    sets = {"tuned": chosen}
    for text in args.tiles:
        variants = dict(chosen)
        for n in strided:
            variants[n.name] = {**default_variant(n, ctx), "algo": "direct", "im2col": 1,
                                **_tile(text)}
            variants[n.name].pop("split", None)
        sets[f"im2col {text}"] = variants
    if args.implicit:
        variants = dict(chosen)
        for n in strided:
            if as_layer(n).op == "conv2d":
                variants[n.name] = {**default_variant(n, ctx), "im2col": 0}
        sets["implicit"] = variants
    for split in args.splits:
        variants = dict(chosen)
        for n in strided:
            if "split" in default_variant(n, ctx):
                variants[n.name] = {**default_variant(n, ctx), "split": split}
        sets[f"split {split}"] = variants
    for steps in args.sync:
        variants = dict(chosen)
        for n in strided:
            if "split" in default_variant(n, ctx):
                variants[n.name] = {**default_variant(n, ctx), "sync": steps}
        sets[f"sync {steps}"] = variants
    feeds = random_feeds(graph, args.batch, 0)
    fetch = list(graph.outputs[:1])
    exes = {}
    outs = {}
    for label, variants in sets.items():
        backend = tuned if label == "tuned" else OpenCLBackend(device)
        if label != "tuned":
            backend.choose_variants = lambda g, b, v=variants: v
        backend.init_state(graph.state, initial_values(graph.state, 0))
        exe = backend.compile(graph, args.batch)
        outs[label] = exe.run(feeds, fetch, step=0)
        exes[label] = exe
    import numpy as np

    ref = next(iter(outs.values()))
    for label, out in outs.items():
        diff = max(float(np.max(np.abs(np.asarray(out[k]) - np.asarray(ref[k])))) for k in fetch)
        print(f"  {label}: max |difference| from tuned output {diff:.2e}")
    names = {n.name for n in strided}
    samples: dict[str, dict[str, list[float]]] = {label: {} for label in exes}
    for _ in range(args.repeat):
        for label, exe in exes.items():
            for name, t in _node_times(exe, names, repeat=1).items():
                samples[label].setdefault(name, []).append(t)
    for n in strided:
        print(f"  {n.name} ({n.op}):")
        base = statistics.median(samples["tuned"][n.name])
        for label in exes:
            t = statistics.median(samples[label][n.name])
            what = describe(sets[label].get(n.name) or default_variant(n, ctx))
            print(f"    {label:14s} {t * 1e3:7.2f} ms  {base / t:5.2f}x  ({what})")
    steps: dict[str, list[float]] = {label: [] for label in exes}
    for step in range(max(args.repeat // 3, 3)):
        for label, exe in exes.items():
            t0 = time.perf_counter()
            exe.run(feeds, fetch, step=step + 1)
            steps[label].append(time.perf_counter() - t0)
    print("  whole runs (median, interleaved): " + ", ".join(
        f"{label} {statistics.median(t) * 1e3:.1f} ms" for label, t in steps.items()))
    print(f"  load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
