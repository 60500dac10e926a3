"""The Winograd GEMMs on packed operands against the plain layout, side by side in one process.

    .venv/bin/python benchmarks/winograd_packing.py [--device SEL] [--rounds 8]
        [--layers conv2 conv5] [--ops forward grad_input grad_kernel] [--batch 256 32]

For each of the fashion model's 3x3 convolutions (benchmarks/winograd.py's LAYERS) and each op,
the one-node graph is bound twice with the same F(4x4) variant and register tile: as cnnc binds
it (packed operands on a CPU: winograd.py's gemm_packing and grad_gemm_packing) and with those
two functions returning the plain layout. The two executables run interleaved, --rounds times
each, and the best of each is kept (the machines these run on are shared: the best run is the
least disturbed). Columns: the node's launches together, and its GEMM launch alone, in ms and
in GFLOP/s of GEMM FLOPs (2 * 36 * tiles * C * F) against the device's measured FMA peak;
ratios plain / packed. The load average is printed with each row.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from winograd import LAYERS

from cnnc.backends.opencl import winograd as binder
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.runtime import OpenCLBackend
from kernels import _values, conv_nodes

OPS = {"forward": 0, "grad_input": 1, "grad_kernel": 2}
GEMMS = ("winograd_gemm", "winograd_grad_gemm")


def _compiled(device, graph, batch, values, tile, packed):
    saved = binder.gemm_packing, binder.grad_gemm_packing
    if not packed:
        binder.gemm_packing = lambda *a: {k: 0 for k in ("UPACK", "VPACK", "VPACK_C")}
        binder.grad_gemm_packing = lambda *a: {"VBLK": 0, "EPACK": 0}
    try:
        backend = OpenCLBackend(device)
        node = graph.nodes[-1].name
        variant = {"algo": "winograd", "wino_m": 4}
        if tile:
            variant["wino_tile"] = tile
        backend.choose_variants = lambda g, b: {node: variant}
        backend.init_state(graph.state, values)
        exe = backend.compile(graph, batch)
    finally:
        binder.gemm_packing, binder.grad_gemm_packing = saved
    exe.run({n: values[n] for n in graph.inputs}, [], step=0)
    return backend, exe


def _time(backend, launches) -> float:
    import pyopencl as cl

    start = time.perf_counter()
    for b in launches:
        b.enqueue(cl, backend.queue)
    backend.queue.finish()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 32])
    parser.add_argument("--layers", nargs="+", default=["conv2", "conv3", "conv4", "conv5"])
    parser.add_argument("--ops", nargs="+", default=list(OPS), choices=list(OPS))
    parser.add_argument("--tile", default="", help="MRxVWxNV, e.g. 6x8x2 (default: the binder's)")
    args = parser.parse_args()
    device = select_device(args.device)
    from cnnc.backends.opencl.peak import measured_peak

    peak = measured_peak(device)
    tile = dict(zip(("MR", "VW", "NV"), map(int, args.tile.split("x")))) if args.tile else None
    rng = np.random.default_rng(0)
    print(f"{device.describe()}; peak {peak:.0f} GFLOP/s; tile {args.tile or 'default'}")
    print(f"{'layer':22s} {'op':12s} {'batch':>5s} {'plain ms':>9s} {'packed':>7s} {'x':>5s}"
          f"   GEMM ms plain/packed, GFLOP/s (of peak)          load")
    for name, (h, w, c, f) in LAYERS.items():
        if not any(name.startswith(x + " ") for x in args.layers):
            continue
        graphs = conv_nodes(h, w, c, f, 3)
        for batch in args.batch:
            for op in args.ops:
                _, graph, _ = graphs[OPS[op]]
                values = _values(graph, batch, rng)
                runs = {p: _compiled(device, graph, batch, values, tile, p) for p in (False, True)}
                best = {p: [1e9, 1e9] for p in runs}
                for _ in range(args.rounds):
                    for p, (backend, exe) in runs.items():
                        gemm = [b for b in exe.bound if b.launch.kernel in GEMMS]
                        best[p][0] = min(best[p][0], _time(backend, exe.bound))
                        best[p][1] = min(best[p][1], _time(backend, gemm))
                cin, cout = (f, c) if op == "grad_input" else (c, f)
                tiles = batch * -(-h // 4) * -(-w // 4)
                flops = 2 * 36 * tiles * cin * cout
                g = {p: flops / best[p][1] / 1e9 for p in runs}
                print(f"{name:22s} {op:12s} {batch:5d} {best[False][0] * 1e3:9.2f} "
                      f"{best[True][0] * 1e3:7.2f} {best[False][0] / best[True][0]:5.2f}   "
                      f"{best[False][1] * 1e3:6.2f}/{best[True][1] * 1e3:6.2f}, "
                      f"{g[False]:4.0f} ({g[False] / peak:4.0%}) -> {g[True]:4.0f} "
                      f"({g[True] / peak:4.0%})   {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
