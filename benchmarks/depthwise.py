"""Depthwise convolutions' kernels, per node, by algorithm: the direct kernels (depthwise.cl,
depthwise_grad.cl, the defaults) beside the grouped conv2d they also are, in one process, the
two executables' launches timed alternately so the load of a shared machine hits both alike.

    .venv/bin/python benchmarks/depthwise.py specs/efficientnet_mini.yaml --train --batch 128

Prints, per depthwise node (forward, input gradient, kernel gradient), the best ms of its
launches under each algorithm, the ratio, and the direct kernel's effective memory traffic in
GB/s (the bytes its operands and result take once: a lower bound on what it moves).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

DEPTHWISE_OPS = ("depthwise_conv2d", "depthwise_conv2d_grad_input", "depthwise_conv2d_grad_kernel")


def _launches_by_node(exe: Any, nodes: set[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for b in exe.bound:
        if b.node in nodes:
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
    args = parser.parse_args()

    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.crosscheck import random_feeds
    from cnnc.frontend.spec import load_spec
    from cnnc.initializers import initial_values
    from cnnc.passes.pipeline import inference_graph, training_graph

    spec = load_spec(args.spec)
    graph = training_graph(spec) if args.train else inference_graph(spec)
    nodes = [n for n in graph.nodes if n.op in DEPTHWISE_OPS]
    names = {n.name for n in nodes}
    grouped = {n.name: {"algo": "grouped"} for n in nodes}
    backend = OpenCLBackend(None)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    feeds = random_feeds(graph, args.batch, 0)
    exes, keep = [], []  # the executables own the buffers their launches' arguments name
    for variants in ({}, grouped):  # one backend (one context, one queue) for both
        backend.choose_variants = lambda g, b, v=variants: v
        exe = backend.compile(graph, args.batch)
        exe.run(feeds, list(graph.outputs[:1]), step=0)
        keep.append(exe)
        exes.append(_launches_by_node(exe, names))
    queue = backend.queue
    print(f"{spec.name}, batch {args.batch}, load {os.getloadavg()[0]:.1f}: best of "
          f"{args.repeat}, alternating")
    print(f"{'node':44s} {'op':30s} {'direct ms':>9s} {'grouped ms':>10s} {'x':>5s} {'GB/s':>5s}")
    for node in nodes:
        times: list[list[float]] = [[], []]
        for _ in range(args.repeat):
            for i, exe in enumerate(exes):
                times[i].append(_time(exe[node.name], queue))
        a, b = (min(t) for t in times)
        gbs = _bytes(graph, node, args.batch) / a / 1e9
        print(f"{node.name:44s} {node.op:30s} {a * 1e3:9.2f} {b * 1e3:10.2f} {b / a:5.1f} "
              f"{gbs:5.1f}")


if __name__ == "__main__":
    main()
