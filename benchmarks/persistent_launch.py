"""Whether one launch that runs a batch-1 pass's layers one after another could beat a launch a
layer on pocl's CPU device: a measurement for a design not built yet.

    .venv/bin/python benchmarks/persistent_launch.py [--device SEL] [--runs 200]

At batch 1 a network's layers are launches of tens of microseconds. pocl 3.1's CPU device
gives a launch's work-groups to worker threads that wait on a condition variable once they find
nothing to do: the worker that finishes its share first sleeps, and the next launch, ready only
when the slower one ends, must wake it again, so a short launch runs on one core for much of its
time (README, "Speed now": fashion-plus, fashion-best and the seed model, the three specs whose
batch-1 passes stay on the CPU device, are slower than onnxruntime's two spinning threads).

Here P "layers" of C equal chunks of arithmetic (each chunk a few dependent multiply-add
chains, as long as --work says) run two ways, on the same device, inputs on the device:
- a launch a layer, C work-groups each (what cnnc's plans do), one wait at the end;
- one launch of two work-groups that take the layers in turn: each claims a layer's chunks
  with an atomic counter until none is left, then waits until all of that layer's chunks are
  done before the next layer. A work-group that starts late joins where the other is; one
  that never starts leaves the other to do every chunk, so the wait cannot deadlock (it only
  waits for chunks claimed by a running work-group). The counters are zeroed by a copy before
  each run.
Each figure is the median of --runs runs after 20 untimed ones. Beside them, the one launch
with a single work-group: every chunk on one core, one launch's fixed cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SOURCE = r"""
static float work(int id, int n)
{
    float a = id * 1e-9f, e = a, f = a, g = a, h = a;
    for (int i = 0; i < n; i++) {
        a = fma(a, 1.0000001f, 0.9999999f);
        e = fma(e, 1.0000001f, 0.9999999f);
        f = fma(f, 0.9999999f, 1.0000001f);
        g = fma(g, 0.9999999f, 1.0000001f);
        h = fma(h, 1.0000001f, 0.5f);
    }
    return a + e + f + g + h;
}

__kernel void layer(__global float *y, int n, int p)
{
    y[p * 64 + get_global_id(0)] = work(get_global_id(0), n);
}

/* ctl[2p]: chunks of layer p claimed, ctl[2p + 1]: done */
__kernel void layers(__global volatile int *ctl, __global float *y, int n, int count, int chunks)
{
    for (int p = 0; p < count; p++) {
        for (;;) {
            const int c = atomic_inc(&ctl[2 * p]);
            if (c >= chunks)
                break;
            y[p * 64 + c] = work(c, n);
            mem_fence(CLK_GLOBAL_MEM_FENCE);
            atomic_inc(&ctl[2 * p + 1]);
        }
        while (atomic_add(&ctl[2 * p + 1], 0) < chunks)
            ;
    }
}
"""

# (multiply-add chain length of a chunk, layers, chunks a layer)
CASES = [(5000, 7, 2), (5000, 7, 8), (20000, 7, 2), (20000, 7, 4), (2000, 15, 8)]


def median_us(run, runs: int) -> float:
    for _ in range(20):
        run()
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return statistics.median(times) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import pyopencl as cl

    from benchmarks.launch_overhead import cpu_name
    from cnnc.backends.opencl.device import select_device

    device = select_device(args.device)
    print(f"CPU: {cpu_name()}; device {device.describe()}; medians of {args.runs} runs")
    ctx = device.context
    queue = cl.CommandQueue(ctx)
    program = cl.Program(ctx, SOURCE).build()
    layer, layers = cl.Kernel(program, "layer"), cl.Kernel(program, "layers")
    y = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, 4 * 64 * 64)
    ctl = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, 4 * 128)
    zeros = np.zeros(128, np.int32)

    def a_launch_a_layer(n: int, count: int, chunks: int) -> None:
        for p in range(count):
            layer.set_args(y, np.int32(n), np.int32(p))
            cl.enqueue_nd_range_kernel(queue, layer, (chunks,), (1,))
        queue.finish()

    def one_launch(n: int, count: int, chunks: int, groups: int = 2) -> None:
        cl.enqueue_copy(queue, ctl, zeros, is_blocking=False)
        layers.set_args(ctl, y, np.int32(n), np.int32(count), np.int32(chunks))
        cl.enqueue_nd_range_kernel(queue, layers, (groups,), (1,))
        queue.finish()

    print("| chain | layers x chunks | one launch, one work-group (one core) | a launch a layer "
          "| one launch, two work-groups | a launch a layer / one launch |")
    print("|---:|---|---:|---:|---:|---:|")
    for n, count, chunks in CASES:
        serial = median_us(partial(one_launch, n, count, chunks, 1), args.runs)
        apart = median_us(partial(a_launch_a_layer, n, count, chunks), args.runs)
        joined = median_us(partial(one_launch, n, count, chunks), args.runs)
        print(f"| {n} | {count} x {chunks} | {serial:.0f} us | {apart:.0f} us | {joined:.0f} us "
              f"| {apart / joined:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
