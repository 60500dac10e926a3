"""Depthwise convolutions' kernels, per node, by algorithm: every algorithm registered for the
node's op (algorithms.py: the forward pass's row kernel, the default, the direct kernel over
flat pixels and the grouped conv2d; the gradients' direct kernels and grouped conv2d; a
depthwise convolution fused with its 1x1 convolution, depthwise_pointwise: the staged kernel,
a CPU's default, and the one-phase kernel), fused nodes (a folded batch norm) included, in one process, the executables' launches timed
alternately so the load of a shared machine hits all alike.

    .venv/bin/python benchmarks/depthwise.py specs/efficientnet_mini.yaml --batch 256
    .venv/bin/python benchmarks/depthwise.py specs/efficientnet_mini.yaml --train --batch 128

Prints, per depthwise node, the best ms of its launches under each algorithm (the default
first, and again under its own name: two runs of the same kernels, whose ratio shows how much
the machine's load moves the figures), each one's ratio to the default's, and the default's effective memory traffic in GB/s
(the bytes its input, weights and result take once: a lower bound on what it moves), beside
what a plain copy of those bytes would take at --copy-gbs (measure it on the device: a depthwise
convolution moves little more than its input and output, so that copy is its floor). Then every
launch of the graph, one after another (its kernels without the host's transfers), with every
depthwise node under each algorithm in turn: what each choice makes of the whole pass.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any


def _launches_by_node(exe: Any, nodes: set[str]) -> dict[str, list[Any]]:
    """Each node's launches that run every time (not those run once per change of weights)."""
    out: dict[str, list[Any]] = {}
    for b in exe.bound:
        if b.node in nodes and not b.launch.once:
            out.setdefault(b.node, []).append(b)
    return out


def _time(bound: list[Any], queue: Any) -> float:
    import pyopencl as cl

    start = time.perf_counter()
    for b in bound:
        b.enqueue(cl, queue)
    queue.finish()
    return time.perf_counter() - start


def _bytes(graph: Any, node: Any, batch: int) -> int:
    """Floats of the node's operands and result, each once, times 4."""
    total = 0
    for name in (*node.inputs, node.name):
        shape = graph.concrete_shape(name, batch)
        n = 1
        for d in shape:
            n *= d
        total += n
    return 4 * total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec")
    parser.add_argument("--train", action="store_true", help="the training graph (gradients)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--copy-gbs", type=float, default=0.0,
                        help="the device's measured copy bandwidth (read + write), GB/s")
    args = parser.parse_args()

    from cnnc.backends.opencl.algorithms import algorithms_of
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.crosscheck import random_feeds
    from cnnc.frontend.spec import load_spec
    from cnnc.initializers import initial_values
    from cnnc.passes.pipeline import inference_graph, training_graph
    from cnnc.tune.space import as_layer

    spec = load_spec(args.spec)
    graph = training_graph(spec) if args.train else inference_graph(spec)
    backend = OpenCLBackend(None)
    ctx = BindContext(graph, args.batch, backend.target)
    nodes = [n for n in graph.nodes if as_layer(n).op.startswith("depthwise")]
    names = {n.name for n in nodes}
    # The algorithms that can run each node, the default (no variant) first.
    algos = {n.name: [None, *(a.name for a in algorithms_of(as_layer(n).op)
                              if a.applies(as_layer(n), ctx))] for n in nodes}
    rounds = max(len(a) for a in algos.values())
    backend.init_state(graph.state, initial_values(graph.state, 0))
    feeds = random_feeds(graph, args.batch, 0)
    exes, keep, whole = [], [], []  # the executables own the buffers their launches name
    for i in range(rounds):  # one backend (one context, one queue) for all
        variants = {n: {"algo": a[i]} for n, a in algos.items() if i < len(a) and a[i]}
        backend.choose_variants = lambda g, b, v=variants: v
        exe = backend.compile(graph, args.batch)
        exe.run(feeds, list(graph.outputs[:1]), step=0)
        keep.append(exe)
        exes.append(_launches_by_node(exe, names))
        whole.append([b for b in exe.bound if not b.launch.once])
    queue = backend.queue
    print(f"{spec.name}, batch {args.batch}, load {os.getloadavg()[0]:.1f}: best of "
          f"{args.repeat}, alternating")
    for node in nodes:
        times: list[list[float]] = [[] for _ in algos[node.name]]
        for _ in range(args.repeat):
            for i in range(len(times)):
                times[i].append(_time(exes[i][node.name], queue))
        best = [min(t) for t in times]
        nbytes = _bytes(graph, node, args.batch)
        floor = f", a copy {nbytes / args.copy_gbs / 1e6:.2f} ms" if args.copy_gbs else ""
        print(f"{node.name} ({node.op}): {nbytes / 1e6:.1f} MB, default "
              f"{nbytes / best[0] / 1e9:.1f} GB/s{floor}")
        for name, t in zip(algos[node.name], best):
            label = "default" if name is None else name
            print(f"    {label:10s} {t * 1e3:8.3f} ms  {t / best[0]:5.2f}x the default's time")
    labels = [" / ".join(sorted({"default" if a[i] is None else a[i] for a in algos.values()
                                 if i < len(a)})) for i in range(rounds)]
    times = [[] for _ in range(rounds)]
    for _ in range(args.repeat):
        for i in range(rounds):
            times[i].append(_time(whole[i], queue))
    print(f"every launch of the pass, load {os.getloadavg()[0]:.1f}:")
    for label, t in zip(labels, times):
        print(f"    {label:30s} {min(t) * 1e3:8.3f} ms  {min(t) / min(times[0]):5.2f}x the "
              "default's time")


if __name__ == "__main__":
    main()
