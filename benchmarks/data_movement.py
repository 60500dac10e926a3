"""The data-movement kernels against the device's memory bandwidth, in GB/s (bytes read + written).

    .venv/bin/python benchmarks/data_movement.py [--device SEL] [--runs 7]

First the machine's bandwidth by a plain copy (clEnqueueCopyBuffer, and a float16 kernel) of
256 MB; then, on unet_mini's shapes at batch 256, elementwise.cl's copy_block (concatenate's
copies into the channels of [256, 28, 28, 48], channel_slice's copy out), pad_rows (a zero
padding) and resample.cl's upsampling2d and its gradient (14x14x32 -> 28x28x32, nearest and
bilinear), each cut as the binders cut it (tiling.run_grid) and timed by OpenCL profiling events,
median of --runs. Figures are for tensors that do not fit the caches.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import numpy as np

from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.kernel_files import kernel_dir
from cnnc.backends.opencl.runtime import target_for
from cnnc.backends.opencl.tiling import flat, run_grid, run_vector

BATCH = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    import pyopencl as cl

    device = select_device(args.device)
    target = target_for(device)
    ctx = cl.Context([device.cl_device])
    queue = cl.CommandQueue(ctx, properties=cl.command_queue_properties.PROFILING_ENABLE)
    print(f"{device.cl_device.name.strip()} ({device.kind}), {args.runs} runs, median")

    def buffer(floats: int) -> cl.Buffer:
        buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, floats * 4)
        cl.enqueue_fill_buffer(queue, buf, np.float32(1), 0, floats * 4)
        return buf

    def timed(name: str, nbytes: int, run: Callable[[], cl.Event]) -> None:
        run().wait()
        times = []
        for _ in range(args.runs):
            event = run()
            event.wait()
            times.append((event.profile.end - event.profile.start) * 1e-9)
        t = statistics.median(times)
        print(f"  {name:<58} {t * 1e3:7.2f} ms {nbytes / t / 1e9:6.1f} GB/s", flush=True)

    def kernel(file: str, name: str, defines: dict[str, int]) -> cl.Kernel:
        options = [f"-I{kernel_dir()}", *(f"-D{k}={v}" for k, v in defines.items())]
        source = (kernel_dir() / file).read_text()
        return getattr(cl.Program(ctx, source).build(options=options), name)

    i32 = np.int32
    n = 64 << 20
    a, b = buffer(n), buffer(n)
    copy16 = cl.Program(ctx, """__kernel void copy16(__global const float16 *x,
        __global float16 *y, int n) { for (int i = get_global_id(0) * 8, e = min(i + 8, n);
        i < e; i++) y[i] = x[i]; }""").build().copy16
    print("memory bandwidth (plain copies of 256 MB)")
    timed("clEnqueueCopyBuffer", 8 * n, lambda: cl.enqueue_copy(queue, b, a))
    timed("float16 copy kernel", 8 * n,
          lambda: copy16(queue, flat(n // 128), None, a, b, i32(n // 16)))

    print("copy_block (rows of one contiguous run)")
    pixels = BATCH * 28 * 28
    out = buffer(pixels * 48)
    for channels, start, what in ((32, 0, "concatenate: 32 of 48 channels"),
                                  (16, 32, "concatenate: 16 of 48 channels")):
        src = buffer(pixels * channels)
        vw = run_vector(channels, target=target)
        rows_per, chunk, chunks, items = run_grid(pixels, channels, vw, target)
        k = kernel("elementwise.cl", "copy_block", {"COPY_BLOCK": 1, "VW": vw})
        timed(what, 8 * pixels * channels, lambda k=k, src=src, vw=vw, rp=rows_per, ch=chunk,
              cs=chunks, it=items, c=channels, s=start: k(
                  queue, flat(it), None, src, out, i32(pixels), i32(c), i32(rp), i32(ch),
                  i32(cs), i32(c), i32(0), i32(48), i32(s)))
    slice_out = buffer(pixels * 24)
    vw = run_vector(24, target=target)
    rows_per, chunk, chunks, items = run_grid(pixels, 24, vw, target)
    k = kernel("elementwise.cl", "copy_block", {"COPY_BLOCK": 1, "VW": vw})
    timed("channel_slice: 24 of 48 channels", 8 * pixels * 24, lambda: k(
        queue, flat(items), None, out, slice_out, i32(pixels), i32(24), i32(rows_per),
        i32(chunk), i32(chunks), i32(48), i32(24), i32(24), i32(0)))

    print("pad_rows (zero_padding2d 1 pixel each side, [256, 28, 28, 32] -> [256, 30, 30, 32])")
    src = buffer(pixels * 32)
    padded = buffer(BATCH * 30 * 30 * 32)
    vw = run_vector(28 * 32, 30 * 32, 32, target=target)
    rows_per, chunk, chunks, items = run_grid(BATCH * 30, 30 * 32, vw, target)
    k = kernel("elementwise.cl", "pad_rows", {"PAD_ROWS": 1, "VW": vw})
    timed("zero_padding2d", 4 * (pixels + BATCH * 900) * 32, lambda: k(
        queue, flat(items), None, src, padded, i32(BATCH * 30), i32(rows_per), i32(chunk),
        i32(chunks), i32(30), i32(28), i32(1), i32(28 * 32), i32(30 * 32), i32(32)))

    print("upsampling2d x2 ([256, 14, 14, 32] <-> [256, 28, 28, 32])")
    small, big = BATCH * 14 * 14 * 32, pixels * 32
    x, y = buffer(big), buffer(big)
    vw = run_vector(32, target=target)
    for bilinear in (0, 1):
        for grad in (False, True):
            name = "upsampling2d_grad" if grad else "upsampling2d"
            rows, run = (BATCH * 14, 14) if grad else (BATCH * 28, 28)
            rows_per, chunk, chunks, items = run_grid(rows, run, vw, target, unit=32)
            defines = {name.upper(): 1, "SH": 2, "SW": 2, "BILINEAR": bilinear, "VW": vw}
            k = kernel("resample.cl", name, defines)
            what = f"{name} {'bilinear' if bilinear else 'nearest'}"
            timed(what, 4 * (small + big), lambda k=k, r=rows, rp=rows_per, ch=chunk,
                  cs=chunks, it=items: k(queue, flat(it), None, x, y, i32(r), i32(rp), i32(ch),
                                         i32(cs), i32(14), i32(14), i32(32)))


if __name__ == "__main__":
    main()
