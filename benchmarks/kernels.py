"""GFLOP/s of cnnc's convolution and Dense kernels beside NumPy/OpenBLAS on the same shapes.

    .venv/bin/python benchmarks/kernels.py [--device SEL] [--batch 32 256] [--repeat 5]

Each row is one op of the fashion model's training step at a batch size: the OpenCL kernels
exactly as `cnnc` binds them (a one-node graph compiled by the OpenCL backend; data already on
the device, median of --repeat timed runs of its launches), the NumPy reference backend's
implementation of the same op, and OpenBLAS's sgemm (numpy.matmul) on the GEMM of the same shape
(M x K times K x N: the best an im2col approach could do). Ratios are cnnc over the other.
FLOPs count a multiply-add as two. Times are the best of --repeat runs (the machines these run on
are shared: the best run is the least disturbed one); the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from cnnc.backends.numpy.call import Call
from cnnc.backends.numpy.table import IMPLS
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node, StateSpec

CONV = {
    "kernel_size": (3, 3),
    "strides": (1, 1),
    "padding": "same",
    "dilation_rate": (1, 1),
    "groups": 1,
}


def _input(name: str, shape: tuple[int, ...]) -> Node:
    return Node(name, "input", attrs=Attrs(shape=shape, dtype="float32"), shape=(None, *shape))


def _three_ops(
    x: Node, dy: Node, fwd: Node, gin: Node, gk: Node, params: tuple[StateSpec, ...], gemm: tuple
) -> list[tuple[str, Graph, tuple]]:
    """Forward, input gradient and kernel gradient of one layer, as one-node graphs; `params`
    = (kernel, bias)."""
    return [
        ("forward", Graph("fwd", (x, fwd), ("y",), params), gemm),
        ("grad input", Graph("gin", (dy, gin), ("dx",), params[:1]), gemm),
        ("grad kernel", Graph("gk", (x, dy, gk), ("dk",), ()), gemm),
    ]


def conv_nodes(h: int, w: int, c: int, f: int, k: int) -> list[tuple[str, Graph, tuple]]:
    """Forward, input gradient and kernel gradient of one convolution, as one-node graphs."""
    geo = {**CONV, "kernel_size": (k, k)}
    params = (StateSpec("k", (k, k, c, f)), StateSpec("b", (f,)))
    fwd = Node(
        "y",
        "conv2d",
        ("x",),
        Attrs(filters=f, activation="relu", use_bias=True, **geo),
        params=("k", "b"),
        shape=(None, h, w, f),
    )
    grad_attrs = Attrs(filters=f, input_shape=(h, w, c), **geo)
    gin = Node("dx", "conv2d_grad_input", ("dy", "k"), grad_attrs, shape=(None, h, w, c))
    gk = Node("dk", "conv2d_grad_kernel", ("x", "dy"), grad_attrs, shape=(k, k, c, f))
    gemm = (h * w, k * k * c, f)  # per image: M rows, K reduction, N columns
    return _three_ops(_input("x", (h, w, c)), _input("dy", (h, w, f)), fwd, gin, gk, params, gemm)


def dense_nodes(n_in: int, units: int) -> list[tuple[str, Graph, tuple]]:
    params = (StateSpec("k", (n_in, units)), StateSpec("b", (units,)))
    fwd = Node(
        "y",
        "dense",
        ("x",),
        Attrs(units=units, activation="relu", use_bias=True),
        params=("k", "b"),
        shape=(None, units),
    )
    gin = Node("dx", "dense_grad_input", ("dy", "k"), shape=(None, n_in))
    gk = Node("dk", "dense_grad_kernel", ("x", "dy"), shape=(n_in, units))
    gemm = (1, n_in, units)
    return _three_ops(_input("x", (n_in,)), _input("dy", (units,)), fwd, gin, gk, params, gemm)


def _values(graph: Graph, batch: int, rng) -> dict[str, np.ndarray]:
    out = {}
    for n in graph.nodes:
        if n.op == "input":
            out[n.name] = rng.standard_normal((batch, *n.shape[1:]), dtype=np.float32)
    for s in graph.state:
        out[s.name] = rng.standard_normal(s.shape, dtype=np.float32) * 0.05
    return out


def _best_time(run: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` timed calls: the one the other processes disturbed least."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def time_opencl(backend: OpenCLBackend, graph: Graph, batch: int, values, repeat: int) -> float:
    import pyopencl as cl

    backend.init_state(graph.state, values)
    exe = backend.compile(graph, batch)
    feeds = {n: values[n] for n in graph.inputs}
    exe.run(feeds, [], step=0)  # inputs on the device, kernels compiled and warm

    def launches() -> None:
        for b in exe.bound:
            b.enqueue(cl, backend.queue)
        backend.queue.finish()

    return _best_time(launches, repeat)


def time_numpy_impl(graph: Graph, batch: int, values, repeat: int) -> float:
    node = graph.nodes[-1]
    operands = [values[v] for v in node.operands]
    call = Call(node=node, dtype=np.dtype(np.float32))
    return _best_time(lambda: IMPLS[node.op](call, *operands), repeat)


def time_sgemm(m: int, k: int, n: int, repeat: int, rng) -> float:
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    for _ in range(3):
        a @ b
    return _best_time(lambda: a @ b, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device")
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--layers",
        nargs="+",
        default=["conv3"],
        help="conv1..conv5, dense (the fashion model's layers)",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    layers = {
        "conv1": lambda: conv_nodes(28, 28, 1, 64, 7),
        "conv2": lambda: conv_nodes(14, 14, 64, 128, 3),
        "conv3": lambda: conv_nodes(14, 14, 128, 128, 3),
        "conv4": lambda: conv_nodes(7, 7, 128, 256, 3),
        "conv5": lambda: conv_nodes(7, 7, 256, 256, 3),
        "dense": lambda: dense_nodes(2304, 128),
    }
    load = os.getloadavg()
    rows = [
        (layer, what, graph, gemm, batch)
        for layer in args.layers
        for what, graph, gemm in layers[layer]()
        for batch in args.batch
    ]
    values = [_values(graph, batch, rng) for _, _, graph, _, batch in rows]
    # NumPy first, in its own phase: OpenBLAS's threads and the OpenCL driver's threads would
    # otherwise compete for the same cores.
    t_np = [
        time_numpy_impl(row[2], row[4], v, max(2, args.repeat // 2)) for row, v in zip(rows, values)
    ]
    t_blas = [
        time_sgemm(row[4] * row[3][0], row[3][1], row[3][2], args.repeat, rng) for row in rows
    ]
    device = select_device(args.device)
    backend = OpenCLBackend(device)
    t_cl = [time_opencl(backend, row[2], row[4], v, args.repeat) for row, v in zip(rows, values)]
    print(f"device: {device.describe()}")
    print(
        f"load average before/after: {load[0]:.2f} / {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs (other processes share them)"
    )
    print(
        f"{'layer':6s} {'op':12s} {'batch':>5s} {'GFLOP':>7s} {'cnnc ms':>8s} {'GFLOP/s':>8s}"
        f" {'numpy ms':>9s} {'GFLOP/s':>8s} {'sgemm ms':>9s} {'GFLOP/s':>8s}"
        f" {'vs numpy':>8s} {'vs sgemm':>8s}"
    )
    for (layer, what, _, (m, k, n), batch), a, b, c in zip(rows, t_cl, t_np, t_blas):
        g = 2.0 * batch * m * k * n / 1e9
        print(
            f"{layer:6s} {what:12s} {batch:5d} {g:7.2f} {a * 1e3:8.1f} {g / a:8.1f} "
            f"{b * 1e3:9.1f} {g / b:8.1f} {c * 1e3:9.1f} {g / c:8.1f} {b / a:8.2f} "
            f"{c / a:8.2f}"
        )


if __name__ == "__main__":
    main()
