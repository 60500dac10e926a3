"""A spec's stem (its first convolution with few input channels) under each of conv2d's forms,
side by side in one process: conv2d_rows.cl (the default, bind_conv_rows.py), im2col + matmul
and the implicit GEMM (the direct algorithm's two forms), each as the whole forward pass at a
batch, back to back and after a 0.5 s pause, and the stem's launches alone.

    .venv/bin/python benchmarks/stem.py SPEC [--batch 256] [--rounds 5] [--device SEL]

Interleaved rounds, medians; the ratios are against im2col + matmul (>1: faster). Other nodes
run their defaults (no tuning cache). The machines these run on are shared: the load average
is printed beside the figures.
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
from cnnc.passes.pipeline import inference_graph

FORMS = {"rows": {"algo": "conv_rows"}, "im2col": {"algo": "direct"},
         "implicit": {"algo": "direct", "im2col": 0}}


def _timed(run, times: int) -> float:
    out = []
    for _ in range(times):
        t0 = time.perf_counter()
        run()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    import pyopencl as cl

    graph = inference_graph(load_spec(args.spec))
    stem = next(n for n in graph.nodes if n.op.startswith("conv2d")
                and graph.shape_of(n.inputs[0])[-1] <= 4)
    backend = OpenCLBackend(args.device)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    feeds, fetch = random_feeds(graph, args.batch, 0), list(graph.outputs[:1])
    exes = {}
    for name, variant in FORMS.items():
        backend.choose_variants = lambda g, b, v=variant: {stem.name: v}
        exes[name] = backend.compile(graph, args.batch)
    queue = backend.queue
    res: dict[str, dict[str, list[float]]] = {n: {"b2b": [], "pause": [], "alone": []}
                                              for n in exes}
    for _ in range(args.rounds):
        for name, exe in exes.items():
            def run(exe=exe):
                exe.run(feeds, fetch)
            for _ in range(3):
                run()
            res[name]["b2b"].append(_timed(run, 10))
            time.sleep(0.5)
            res[name]["pause"].append(_timed(run, 1))
            mine = [b for b in exe.bound if b.node == stem.name]

            def alone(mine=mine):
                for b in mine:
                    b.enqueue(cl, queue)
                queue.finish()
            alone()
            res[name]["alone"].append(_timed(alone, 10))
    load = f"{os.getloadavg()[0]:.2f}"
    print(f"{args.spec} batch {args.batch}: stem '{stem.name}' ({stem.op}) on "
          f"{graph.shape_of(stem.inputs[0])[1:]}, load {load}, {time.strftime('%H:%M:%S')}")
    base = {k: statistics.median(v) for k, v in res["im2col"].items()}
    for name, r in res.items():
        m = {k: statistics.median(v) for k, v in r.items()}
        kernels = "+".join(b.launch.kernel for b in exes[name].bound if b.node == stem.name)
        print(f"  {name:9s} {kernels:22s} forward {m['b2b'] * 1e3:8.3f} ms "
              f"(x{base['b2b'] / m['b2b']:.2f}), after a pause {m['pause'] * 1e3:8.3f} ms "
              f"(x{base['pause'] / m['pause']:.2f}), stem alone {m['alone'] * 1e3:7.3f} ms "
              f"(x{base['alone'] / m['alone']:.2f})")


if __name__ == "__main__":
    main()
