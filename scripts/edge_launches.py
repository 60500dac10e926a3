"""Edge launches for scripts/gpu-check.sh: the shapes where GPUs' limits bite, run and checked.

1. More than 65,535 row tiles: two 224x224 convolutions at batch 128 (6.4 million output rows:
   100,352 tiles of 64 rows on a GPU), forward and one training step, every value (not the
   updated parameters) compared with the NumPy reference after the whole run (some drivers cap a grid dimension at 65,535 groups;
   cnnc puts row tiles in dimension 0).
2. An allocation over the per-buffer cap (CL_DEVICE_MAX_MEM_ALLOC_SIZE): a chain of convolutions
   whose planned memory, every value kept, exceeds the largest buffer the device allows; the
   plan is split into buffers, and the predictions of the first and last images are compared
   with NumPy run on those images alone (images are independent in a forward pass).

Usage: python scripts/edge_launches.py [--device SELECTOR] [--max-buffer MIB] [--tiny]
--max-buffer simulates a smaller largest allocation (for devices with little memory);
--tiny (for Oclgrind) plans the row-tile case without running it and shrinks the rest.
Prints one line per check, 'ok' or 'FAIL'; exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace

import numpy as np

import cnnc
from cnnc.backends.numpy import NumpyBackend
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.runtime import OpenCLBackend, target_for
from cnnc.backends.opencl.target import (
    GRID_GROUPS,
    INDEX_MAX,
    UNLIMITED,
    Limits,
    Target,
    describe_size,
)
from cnnc.crosscheck import errors, random_feeds
from cnnc.errors import CnncError
from cnnc.initializers import initial_values
from cnnc.ir.graph import Graph
from cnnc.passes.pipeline import inference_graph, training_graph

TOLERANCE = 1e-3  # every value after a whole run, relative to max|reference|
NUMPY_FACTOR = 4.0  # ... or this many times NumPy float32's own error, where that is larger


def wide_convolutions() -> Graph:
    net = cnnc.Network("wide", input=(224, 224, 3))
    net.conv2d(4, 3, padding="same", activation="relu")
    net.conv2d(4, 3, padding="same")
    net.global_avgpool2d()
    net.dense(2, activation="softmax")
    return cnnc.load_spec(net)


def conv_chain(size: int, layers: int) -> Graph:
    net = cnnc.Network("chain", input=(size, size, 8))
    for _ in range(layers):
        net.conv2d(16, 3, padding="same", activation="relu")
    net.global_avgpool2d()
    net.dense(4, activation="softmax")
    return cnnc.load_spec(net)


def compare_whole_run(graph: Graph, batch: int, device: str | None) -> tuple[bool, str]:
    """Run `graph` once on the device, on NumPy in float32 and in float64 (the exact answer,
    as far as float32 goes); every value (not the updated parameters: cnnc/crosscheck.py says why)
    must be within TOLERANCE of float64, or within NUMPY_FACTOR times NumPy float32's own
    error where that is larger (a gradient summing millions of terms that nearly cancel)."""
    state = initial_values(graph.state, 0)
    feeds = random_feeds(graph, batch, 0)
    values = [n.name for n in graph.nodes if n.shape is not None and n.op != "input"]
    runs = {}
    for name, backend in (
        ("exact", NumpyBackend("float64")),
        ("numpy", NumpyBackend()),
        ("device", OpenCLBackend(device)),
    ):
        backend.init_state(graph.state, state)
        keep = {"keep": ["*"]} if name == "device" else {}  # NumPy keeps what is fetched
        runs[name] = backend.compile(graph, batch, **keep).run(feeds, values, step=1)
    worst, worst_name, passed = 0.0, "", True
    for value in values:
        _, mine = errors(runs["exact"][value], runs["device"][value])
        _, numpy_error = errors(runs["exact"][value], runs["numpy"][value])
        allowed = max(TOLERANCE, NUMPY_FACTOR * numpy_error)
        if mine / allowed > worst:
            worst, worst_name = mine / allowed, f"{value}: {mine:.1e}, allowed {allowed:.1e}"
        passed &= mine <= allowed
    summary = f"{len(values)} values against NumPy float64; nearest its tolerance: {worst_name}"
    return passed, summary


def row_tiles(device: str | None, tiny: bool) -> bool:
    spec = wide_convolutions()
    batch = 128
    ok = True
    for what, graph in (("forward", inference_graph(spec)), ("training", training_graph(spec))):
        backend = OpenCLBackend(device)
        target = backend.target
        if tiny:  # planned only: the simulator's memory need not hold it
            target = replace(target, limits=replace(target.limits, max_allocation=UNLIMITED))
        plan = make_plan(graph, batch, target)
        most = max(  # over the GEMMs, whose row tiles are the point (not element-wise kernels)
            (lau.global_size[0] // (lau.local_size or (1,))[0], node, lau.kernel)
            for node, lau in plan.launches()
            if "MR" in lau.define_map
        )
        print(f"row tiles, {what}: most row tiles (work-groups in dimension 0) of a GEMM: "
              f"{most[0]:,} ({most[1]}, {most[2]}) on {backend.device.describe()}", flush=True)
        if most[0] <= GRID_GROUPS[1]:
            print("  FAIL: the case has no more than 65,535 groups in dimension 0 here")
            ok = False
            continue
        if tiny:
            print("  planned only (--tiny): every launch is within the device's limits")
            continue
        start = time.perf_counter()
        passed, summary = compare_whole_run(graph, batch, device)
        ok &= passed
        print(f"  {'ok' if passed else 'FAIL'}: {summary}, {time.perf_counter() - start:.1f} s",
              flush=True)
    return ok


def over_the_buffer_cap(device: str | None, max_buffer: int | None, tiny: bool) -> bool:
    backend = OpenCLBackend(device)
    real = backend.device.limits
    cap = min(real.max_allocation, max_buffer or real.max_allocation)
    spec = conv_chain(4, 2) if tiny else conv_chain(32, 12)
    graph = inference_graph(spec)
    target = Target(backend.target.kind, backend.target.compute_units, Limits(max_allocation=cap))
    one = make_plan(graph, 1, target_for(backend.device, target), keep=["*"]).memory
    per_image, largest = one.peak, max(t.nbytes for t in one.tensors)
    batch = math.ceil(1.25 * cap / per_image)
    budget = 0.6 * real.global_memory
    print(f"over the buffer cap: largest buffer {describe_size(cap)}"
          f"{' (simulated)' if cap < real.max_allocation else ''}, device memory "
          f"{describe_size(real.global_memory)}; {describe_size(per_image)} per image "
          f"planned, batch {batch:,}", flush=True)
    if batch * per_image > budget or batch * largest > cap or batch * largest // 4 > INDEX_MAX:
        print(f"  FAIL: no batch fits: {batch * per_image / 2**30:.1f} GiB planned against "
              f"{budget / 2**30:.1f} GiB usable")
        return False
    backend = OpenCLBackend(device, target=target)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    start = time.perf_counter()
    exe = backend.compile(graph, batch, keep=["*"])
    sizes = exe.plan.memory.sizes
    print(f"  planned {describe_size(exe.plan.memory.peak)} in {len(sizes)} buffers, the "
          f"largest {describe_size(max(sizes))}", flush=True)
    feeds = random_feeds(graph, batch, 0)
    out = exe.run(feeds, list(graph.outputs))[graph.outputs[0]]
    seconds = time.perf_counter() - start
    rows = np.unique(np.r_[0:4, batch - 4 : batch].clip(0, batch - 1))
    reference = NumpyBackend()
    reference.init_state(graph.state, initial_values(graph.state, 0))
    sub = {k: v[rows] for k, v in feeds.items()}
    want = reference.compile(graph, len(rows)).run(sub, list(graph.outputs))[graph.outputs[0]]
    error = float(np.max(np.abs(out[rows] - want)) / max(np.max(np.abs(want)), 1e-30))
    passed = len(sizes) > 1 and error <= TOLERANCE
    print(f"  {'ok' if passed else 'FAIL'}: {len(sizes)} buffers; images "
          f"{', '.join(str(r) for r in rows)} within {error:.1e} of NumPy; {seconds:.1f} s",
          flush=True)
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", help="OpenCL device selector (default: cnnc's default)")
    parser.add_argument("--max-buffer", type=int, metavar="MIB",
                        help="simulate a device whose largest buffer is this many MiB")
    parser.add_argument("--tiny", action="store_true", help="shapes for a simulator")
    args = parser.parse_args()
    max_buffer = args.max_buffer * 2**20 if args.max_buffer else None
    if args.tiny and max_buffer is None:
        max_buffer = 2**14  # 16 KiB
    ok = True
    for check in (
        lambda: row_tiles(args.device, args.tiny),
        lambda: over_the_buffer_cap(args.device, max_buffer, args.tiny),
    ):
        try:
            ok &= check()
        except CnncError as err:  # a refusal or a device error: this check failed, say why
            print(f"  FAIL: {err.render()}", flush=True)
            ok = False
    print("edge launches: " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
