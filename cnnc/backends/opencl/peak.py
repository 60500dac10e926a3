"""The device's measured multiply-add peak (kernels/peak.cl), cached per device: what `cnnc
bench` compares every kernel's GFLOP/s with, so the headroom shows at a glance.

A datasheet peak would be wrong on the machines cnnc meets (a CPU's clock under an all-core
vector load, pocl's code for it); the probe measures what an OpenCL kernel on this driver
reaches when nothing but FMAs limits it. It takes about a second and is kept in
`<cache dir>/peak.json` keyed by the device, driver, platform and the probe's source.

A probe that shares the cores with another job reads low (on a 2-core Zen 3 with a second job
running: 66 GFLOP/s, then 100, where the idle machine gives more), and a low peak once cached
made every later `cnnc bench` claim 300% of it. So the benchmarks probe again each time
(`refresh=True`) and the cache keeps the best rate any probe has reached: the peak can only
move up towards the device's, never stay stuck at a loaded machine's reading.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from typing import Any

import numpy as np

from cnnc import settings
from cnnc.atomic import atomic_write

FILE_NAME = "peak.json"
WIDTHS = (4, 8, 16)  # vector widths tried; the fastest is the device's peak
CHAINS = 8  # as kernels/peak.cl
TARGET_SECONDS = 0.05  # one timed launch
REPEATS = 3


def _key(device: Any) -> str:
    from cnnc.backends.opencl.kernel_files import kernel_dir

    d = device.cl_device
    source = (kernel_dir() / "peak.cl").read_bytes()
    text = "\0".join([str(d.name).strip(), str(d.driver_version).strip(),
                      str(d.platform.version).strip(), hashlib.sha256(source).hexdigest()])
    return hashlib.sha256(text.encode()).hexdigest()


def _read(path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _valid(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("gflops"), (int, float))
            and 0 < entry["gflops"] < 1e9)


def _rate(device: Any, width: int) -> float:
    """GFLOP/s of the probe at one vector width: the best of a few launches."""
    import pyopencl as cl

    from cnnc.backends.opencl.program import kernel_group_size, program_cache

    kernel = program_cache(device).kernel("peak.cl", "fma_peak", {"VW": width})
    local = max(1, min(256, kernel_group_size(kernel, device)))
    items = local * max(1, device.cl_device.max_compute_units) * 4
    queue = cl.CommandQueue(device.context)
    out = cl.Buffer(device.context, cl.mem_flags.WRITE_ONLY, items * 4)
    kernel.set_arg(0, out)

    def launch(iterations: int) -> float:
        kernel.set_arg(1, np.int32(iterations))
        start = time.perf_counter()
        cl.enqueue_nd_range_kernel(queue, kernel, (items,), (local,))
        queue.finish()
        return time.perf_counter() - start

    iterations = 64
    launch(iterations)  # first launch: pocl compiles for the work-group size
    while True:  # grow until one launch is long enough to time
        seconds = launch(iterations)
        if seconds >= TARGET_SECONDS or iterations >= 2**24:
            break
        iterations *= 2 if seconds < TARGET_SECONDS / 8 else 1 + round(TARGET_SECONDS / seconds)
    best = min(launch(iterations) for _ in range(REPEATS))
    return 2.0 * items * iterations * CHAINS * width / best / 1e9


def measured_peak(device: Any, *, refresh: bool = False) -> float:
    """The device's FMA peak in GFLOP/s: from the cache, or measured now where the cache has
    none or `refresh` asks for a new probe; the cache keeps the best rate measured."""
    path = settings.cache_dir() / FILE_NAME
    key = _key(device)
    cached = _read(path)
    if not refresh and _valid(cached.get(key)):
        return float(cached[key]["gflops"])
    rates = {w: _rate(device, w) for w in WIDTHS}
    width = max(rates, key=rates.get)
    entry = {"gflops": rates[width], "width": width, "device": device.name}
    cached = _read(path)  # another process may have written meanwhile
    if _valid(cached.get(key)) and cached[key]["gflops"] >= entry["gflops"]:
        return float(cached[key]["gflops"])  # this probe shared the cores: the best one stands
    cached[key] = entry
    # A read-only cache keeps nothing: the peak is measured again next time, never wrong.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(cached, indent=1, sort_keys=True).encode())
    return rates[width]
