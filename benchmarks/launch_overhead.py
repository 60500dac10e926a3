"""What a kernel launch costs on the device, and what share of a batch-1 forward pass that is.

    .venv/bin/python benchmarks/launch_overhead.py [SPEC ...] [--device SEL] [--runs 20]

First the fixed cost of one launch of a kernel that does almost nothing (kernels/peak.cl's probe
with no iterations, 64 work-items), enqueued 2,000 times back to back with one wait at the end
(as a plan's launches run) and with a wait after each, and one launch and its wait after a pause
(--settle, default 0.1 s, as benchmarks/latency.py times a forward pass): pocl's pthread
device's worker threads wait on a condition variable once its queue is empty, so a forward pass
that starts after idle time first wakes them (and on a virtual machine its idle virtual CPUs),
a fixed cost that a back-to-back loop never sees. Then, for each spec (default: every example
spec), the forward pass at batch 1 through cnnc.compile's OpenCL model with the tuning
cache's variants: its launches, the median time of `model.predict` on one image, and the
launches' fixed cost as a share of it (launches x the back-to-back cost), and with the one wait
for the queue a forward pass ends with. The CPU's name comes first; every figure is the median
of --runs runs after a warm-up. Between the two, a pass of 18 small launches that do real work,
back to back and call by call after a 0.5 s pause: how many calls the wake-up cost lasts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPECS = ["fashion", "fashion-plus", "lenet5", "resnet_mini", "mobilenet_mini", "inception_mini",
         "mobilenetv3_mini", "efficientnet_mini", "convnext_mini", "shufflenet_mini",
         "unet_mini"]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def launch_cost(device, count: int = 2000) -> tuple[float, float]:
    """Seconds per launch: back to back (one wait at the end), and waiting after each."""
    import pyopencl as cl

    from cnnc.backends.opencl.program import program_cache

    kernel = program_cache(device).kernel("peak.cl", "fma_peak", {"VW": 1})
    queue = cl.CommandQueue(device.context)
    out = cl.Buffer(device.context, cl.mem_flags.WRITE_ONLY, 64 * 4)
    kernel.set_args(out, np.int32(0))
    for _ in range(50):
        cl.enqueue_nd_range_kernel(queue, kernel, (64,), None)
    queue.finish()
    start = time.perf_counter()
    for _ in range(count):
        cl.enqueue_nd_range_kernel(queue, kernel, (64,), None)
    queue.finish()
    pipelined = (time.perf_counter() - start) / count
    start = time.perf_counter()
    for _ in range(count // 4):
        cl.enqueue_nd_range_kernel(queue, kernel, (64,), None)
        queue.finish()
    waited = (time.perf_counter() - start) / (count // 4)
    return pipelined, waited


def launch_after_pause(device, settle: float, runs: int = 20) -> float:
    """Median seconds of one launch and its wait, each after `settle` seconds of idle time."""
    import pyopencl as cl

    from cnnc.backends.opencl.program import program_cache

    kernel = program_cache(device).kernel("peak.cl", "fma_peak", {"VW": 1})
    queue = cl.CommandQueue(device.context)
    out = cl.Buffer(device.context, cl.mem_flags.WRITE_ONLY, 64 * 4)
    kernel.set_args(out, np.int32(0))
    times = []
    for _ in range(runs):
        time.sleep(settle)
        start = time.perf_counter()
        cl.enqueue_nd_range_kernel(queue, kernel, (64,), None)
        queue.finish()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def recovery_after_pause(device, pause: float, launches: int = 18, calls: int = 12,
                         rounds: int = 5) -> tuple[float, list[float]]:
    """A pass of `launches` small launches that do real work (the peak probe on 8,192
    work-items, 15 iterations: tens of microseconds each), as a tiny network's forward pass
    runs: its median seconds back to back, and the median seconds of the 1st, 2nd, ... call
    after `pause` seconds of idle time (over `rounds` pauses). On a 2-core Zen 3 VM the calls
    after a pause stayed slow for ~10 calls while one long kernel was not slowed at all: the
    cost is in waking the worker threads between launches, not in the arithmetic."""
    import pyopencl as cl

    from cnnc.backends.opencl.program import program_cache

    kernel = program_cache(device).kernel("peak.cl", "fma_peak", {"VW": 1})
    queue = cl.CommandQueue(device.context)
    size = 8192
    out = cl.Buffer(device.context, cl.mem_flags.WRITE_ONLY, size * 4)
    kernel.set_args(out, np.int32(15))

    def one_pass() -> float:
        start = time.perf_counter()
        for _ in range(launches):
            cl.enqueue_nd_range_kernel(queue, kernel, (size,), None)
        queue.finish()
        return time.perf_counter() - start

    for _ in range(20):
        one_pass()
    steady = statistics.median(one_pass() for _ in range(30))
    table = []
    for _ in range(rounds):
        time.sleep(pause)
        table.append([one_pass() for _ in range(calls)])
    return steady, [statistics.median(col) for col in zip(*table)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=SPECS)
    parser.add_argument("--device", default=None)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--settle", type=float, default=0.1,
                        help="seconds of idle time before each timed call of the second kind")
    args = parser.parse_args(argv)

    import cnnc
    from cnnc.backends.opencl.device import select_device

    device = select_device(args.device)
    print(f"CPU: {cpu_name()}; device {device.describe()}")
    pipelined, waited = launch_cost(device)
    woken = launch_after_pause(device, args.settle, args.runs)
    print(f"one launch: {pipelined * 1e6:.1f} us back to back, {waited * 1e6:.1f} us waiting "
          f"after each, {woken * 1e6:.1f} us after {args.settle} s idle")
    steady, after = recovery_after_pause(device, 0.5)
    print(f"18 small launches (a tiny network's pass): {steady * 1e3:.2f} ms back to back; "
          f"calls 1-{len(after)} after 0.5 s idle: "
          + " ".join(f"{t * 1e3:.2f}" for t in after) + " ms")
    print(f"{'spec':20s} {'launches':>8s} {'forward ms':>10s} {'launches':>9s} "
          f"{'+ one wait':>10s} {'after idle ms':>13s} {'launches + wake':>15s}")
    for spec in args.specs:
        path = ROOT / "specs" / f"{spec}.yaml"
        model = cnnc.compile(str(path) if path.exists() else spec, backend="opencl",
                             device=device.index)
        shape = model.graph.shape_of(model.graph.inputs[0])[1:]
        x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
        model.predict(x, batch_size=1)
        launches = len(model.prepare(1).bound)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            model.predict(x, batch_size=1)
            times.append(time.perf_counter() - start)
        t = statistics.median(times)
        share = launches * pipelined / t
        with_wait = min(1.0, (launches * pipelined + waited) / t)
        idle = []
        for _ in range(args.runs):
            time.sleep(args.settle)
            start = time.perf_counter()
            model.predict(x, batch_size=1)
            idle.append(time.perf_counter() - start)
        t_idle = statistics.median(idle)
        with_wake = min(1.0, (launches * pipelined + woken) / t_idle)
        print(f"{spec:20s} {launches:8d} {t * 1e3:10.2f} {100 * share:8.0f}% "
              f"{100 * with_wait:9.0f}% {t_idle * 1e3:13.2f} {100 * with_wake:14.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
