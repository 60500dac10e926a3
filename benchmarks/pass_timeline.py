"""Where a small-batch forward pass's time goes: each launch's OpenCL event timestamps across real
runs of the pass, beside the same launch timed alone.

    .venv/bin/python benchmarks/pass_timeline.py [--spec fashion] [--batch 1] [--rounds 30]
                                                 [--warm-calls 3] [--settle 0] [--device SEL]

The spec's forward pass (the tuning cache's variants, as `cnnc bench` runs them) on a queue with
profiling enabled. Each round, after --settle seconds of pause and --warm-calls untimed runs,
enqueues the pass's launches as OpenCLExecutable.run does (inputs already in place), keeps their
events and waits. Per launch, medians over the rounds: when it started and ended after the first
launch was queued (us), its duration in the pass, the gap since the launch before it ended
(pocl's scheduling and its worker threads' wake-up between launches), and its duration alone:
the median of ten launches of it alone, each waited for (its data, weights included, in the
caches). Then: the host's time to enqueue the whole pass, the wall time of the pass to the end
of its wait, and the events' span from the first start to the last end. The CPU's name and the
load average come first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import pyopencl as cl

import cnnc
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.crosscheck import random_feeds
from cnnc.initializers import initial_values
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.tuner import install

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch_overhead import cpu_name


def _alone(exe, queue, k: int, runs: int = 10) -> float:
    """Median microseconds of launch k alone, each launch waited for."""
    b = exe.bound[k]
    b.enqueue(cl, queue)
    queue.finish()
    times = []
    for _ in range(runs):
        event = b.enqueue(cl, queue)
        queue.finish()
        times.append((event.profile.end - event.profile.start) / 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="fashion")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warm-calls", type=int, default=3)
    parser.add_argument("--settle", type=float, default=0.0)
    parser.add_argument("--device")
    args = parser.parse_args()
    graph = inference_graph(cnnc.load_spec(args.spec))
    backend = OpenCLBackend(select_device(args.device))
    install(backend)  # the tuning cache's variants, if any
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exe = backend.compile(graph, args.batch)
    feeds = random_feeds(graph, args.batch, 0)
    fetch = list(graph.outputs[:1])
    # the executable enqueues on backend.queue: a profiling one for the whole measurement
    queue = cl.CommandQueue(backend.device.context,
                            properties=cl.command_queue_properties.PROFILING_ENABLE)
    backend.queue = queue
    for _ in range(3):
        exe.run(feeds, fetch)
    print(f"{graph.name} at batch {args.batch}: CPU {cpu_name()}; device "
          f"{backend.device.describe()}; load average {os.getloadavg()[0]:.2f}; "
          f"{args.rounds} rounds, {args.settle} s pause and {args.warm_calls} runs before each")
    rows: list[list[tuple[float, ...]]] = [[] for _ in exe.bound]
    host, wall, span = [], [], []
    for _ in range(args.rounds):
        if args.settle:
            time.sleep(args.settle)
        for _ in range(args.warm_calls):
            exe.run(feeds, fetch)
        start = time.perf_counter()
        events = [b.enqueue(cl, queue) for b in exe.bound]
        enqueued = time.perf_counter()
        queue.finish()
        wall.append(time.perf_counter() - start)
        host.append(enqueued - start)
        first = events[0].profile.queued
        previous_end = None
        for k, event in enumerate(events):
            p = event.profile
            gap = p.start - (previous_end if previous_end is not None else p.queued)
            rows[k].append(((p.start - first) / 1e3, (p.end - first) / 1e3,
                            (p.end - p.start) / 1e3, gap / 1e3))
            previous_end = p.end
        span.append((events[-1].profile.end - events[0].profile.start) / 1e3)
    print("| # | node | kernel | start us | end us | in pass us | gap before us | alone us |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    in_pass = alone_sum = 0.0
    for k, b in enumerate(exe.bound):
        med = [statistics.median(r[i] for r in rows[k]) for i in range(4)]
        alone = _alone(exe, queue, k)
        in_pass += med[2]
        alone_sum += alone
        print(f"| {k} | {b.node} | {b.launch.file}:{b.launch.kernel} | {med[0]:.0f} | "
              f"{med[1]:.0f} | {med[2]:.1f} | {med[3]:.1f} | {alone:.1f} |")
    print(f"launches in the pass {in_pass:.0f} us, alone {alone_sum:.0f} us (medians summed); "
          f"events' span {statistics.median(span):.0f} us; host enqueue "
          f"{statistics.median(host) * 1e6:.0f} us; wall to the end of the wait "
          f"{statistics.median(wall) * 1e6:.0f} us (min {min(wall) * 1e6:.0f})")


if __name__ == "__main__":
    main()
