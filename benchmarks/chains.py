"""Small forward passes on pocl's CPU device in chains (cnnc/backends/opencl/chain.py) against a
launch a layer, side by side in one process.

    .venv/bin/python benchmarks/chains.py [SPEC ...] [--batch 1 8] [--runs 200] [--warm 3]

For each spec (default: the three whose batch-1 pass stays on the CPU device: fashion,
fashion-plus, fashion-best) and batch size, the same network with the same weights compiled
twice on the CPU device (never its one-thread companion): with chains and with CNNC_CHAINS off.
The outputs are compared first; then the bound executables (`model.prepare(batch).run`, input
in, output out) take turns, each timed call after --warm untimed ones, and the medians are
printed with their ratio (above 1: the chains are faster), beside each pass's launches and,
from a queue with profiling, the chain launches' device time against the sum of the layers'
launches timed alone (each waited for: their inputs and weights in the caches). The tuning
cache's variants are used, as `cnnc bench` does. The CPU's name and the load average come
first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch_overhead import cpu_name

DEFAULT_SPECS = ("fashion", "fashion-plus", "fashion-best")


def _executable(spec: str, batch: int, chains: bool, seed: int):
    """The model's bound executable at `batch`, with or without chains (read as it is bound)."""
    import cnnc

    os.environ["CNNC_CHAINS"] = "1" if chains else "0"
    try:
        model = cnnc.compile(spec, backend="opencl", seed=seed)
        return model, model.prepare(batch)
    finally:
        os.environ.pop("CNNC_CHAINS", None)


def _event_us(cl, queue, kernel, global_size, local_size, runs: int = 100) -> float:
    times = []
    for _ in range(runs):
        event = cl.enqueue_nd_range_kernel(queue, kernel, global_size, local_size)
        event.wait()
        times.append((event.profile.end - event.profile.start) / 1e3)
    return statistics.median(times)


def measure(spec: str, batch: int, runs: int, warm: int) -> str:
    import pyopencl as cl

    on, exe_on = _executable(spec, batch, True, 5)
    _, exe_off = _executable(spec, batch, False, 5)
    graph = on.graph
    name, out = graph.inputs[0], graph.outputs[0]
    x = np.random.default_rng(0).random(graph.concrete_shape(name, batch), dtype=np.float32)
    feeds, fetch = {name: x}, [out]
    diff = float(np.abs(exe_on.run(feeds, fetch)[out] - exe_off.run(feeds, fetch)[out]).max())
    times: dict[str, list[float]] = {"chains": [], "a launch a layer": []}
    for _ in range(runs):
        for key, exe in (("chains", exe_on), ("a launch a layer", exe_off)):
            for _ in range(warm):
                exe.run(feeds, fetch)
            begin = time.perf_counter()
            exe.run(feeds, fetch)
            times[key].append(time.perf_counter() - begin)
    chained, apart = (statistics.median(v) * 1e6 for v in times.values())
    queue = cl.CommandQueue(exe_on.backend.device.context,
                            properties=cl.command_queue_properties.PROFILING_ENABLE)
    alone = sum(_event_us(cl, queue, b.kernel, b.launch.global_size, b.launch.local_size)
                for b in exe_on.bound)
    device = sum(_event_us(cl, queue, k, g, lo) for k, g, lo in exe_on._calls)
    return (f"| {graph.name} | {batch} | {len(exe_on._calls)} ({len(exe_on.bound)}) "
            f"| {chained:.0f} us | {apart:.0f} us | **{apart / chained:.2f}x** "
            f"| {device:.0f} us / {alone:.0f} us | {diff:.1e} |")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*")
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warm", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ["CNNC_LATENCY_DEVICE"] = "0"  # the CPU device, never its companion
    sys.path.insert(0, str(ROOT))
    from cnnc.backends.opencl.device import default_device

    specs = [str(ROOT / "specs" / f"{s}.yaml") if (ROOT / "specs" / f"{s}.yaml").exists()
             else s for s in (args.specs or DEFAULT_SPECS)]
    print(f"CPU: {cpu_name()}; device {default_device().describe()}; load average "
          f"{os.getloadavg()[0]:.2f}; medians of {args.runs} interleaved runs, each after "
          f"{args.warm} untimed")
    print("| spec | batch | launches (layers') | exe.run, chains | exe.run, a launch a layer "
          "| ratio | chains' device time / layers' alone | max diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for spec in specs:
        for batch in args.batch:
            print(measure(spec, batch, args.runs, args.warm), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
