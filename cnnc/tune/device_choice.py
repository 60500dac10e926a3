"""Which device runs a small forward pass, timed: the CPU device or its one-thread companion.

cnnc/backends/opencl/latency.py runs a small forward pass on pocl's 'basic' device beside the
CPU device where that is faster, and guesses it from the pass's arithmetic where nothing was
timed. `cnnc tune` of a forward pass (and Model.tune) times it instead, after tuning the
launches: the whole pass on each device with the tuning cache's variants, interleaved, each at
a steady pace (a few untimed passes before the timed ones), and keeps the faster in the cache.
The guess is wrong where one core runs far from its peak: LeNet-5 at batch 2-8 (1-channel
maps; the companion 1.2-1.9x slower on the Intel Xeon) is what the timing catches.

The entry is the tuning cache's like chunking.py's (cache.device_key: the CPU device, not the
companion, the kernel sources, the graph's digest, the input shapes and the batch); its variant
is {"companion": 1} or {"companion": 0}, which CachedVariants.companion_choice reads.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from cnnc.backends.opencl.latency import usable_companion, worth_timing
from cnnc.ir.graph import Graph
from cnnc.tune.cache import TuningCache, device_key, make_entry

ROUNDS = 7  # interleaved rounds: the two devices' passes,
WARM_CALLS = 5  # each after this many untimed passes (its own steady pace),
CALLS = 20  # then this many timed
# About what timing takes with warm caches (two bindings, 7 x 2 x 25 small passes): what a
# tuning of such a pass keeps of its budget for it.
SECONDS = 3.0


def seconds_kept(device: Any, graph: Graph, batch: int) -> float:
    """What a tuning of a forward pass keeps of its budget for tune_device: SECONDS where it
    times the two devices, none where it does not."""
    return SECONDS if worth_timing(device, graph, batch) else 0.0


def split_budget(budget: float, device: Any, graph: Graph, batch: int,
                 train: bool) -> tuple[float, float]:
    """A tuning's budget as (the launches' searches, tune_device's timing): the timing's
    seconds_kept off the searches' share, which keeps at least half of it."""
    timing = 0.0 if train else seconds_kept(device, graph, batch)
    return max(budget - timing, budget / 2), timing


@dataclass
class DeviceChoice:
    batch: int
    companion: bool
    seconds: dict[str, float]  # median seconds of one pass on 'device' and 'companion'


def tune_device(device: Any, cache: TuningCache, graph: Graph,
                batch: int) -> DeviceChoice | None:
    """Time one forward pass of `graph` at `batch` on the device and on its companion, each
    with the cache's variants, interleaved, and keep the faster in the cache. None where there
    is nothing to time (latency.worth_timing)."""
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.crosscheck import random_feeds
    from cnnc.initializers import initial_values
    from cnnc.tune.tuner import CachedVariants

    if not worth_timing(device, graph, batch):
        return None
    values = initial_values(graph.state, 0)
    feeds = random_feeds(graph, batch, 0)
    outputs = list(graph.outputs)
    runs = {}
    for name, on in (("device", device), ("companion", usable_companion(device))):
        backend = OpenCLBackend(on)
        backend.choose_variants = CachedVariants(backend, cache)
        backend.init_state(graph.state, values)
        runs[name] = partial(backend.compile(graph, batch).run, feeds, outputs)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # first runs (pocl's builds for the work-group sizes) untimed
        run()
    for _ in range(ROUNDS):
        for name, run in runs.items():
            for _ in range(WARM_CALLS):
                run()
            begin = time.perf_counter()
            for _ in range(CALLS):
                run()
            times[name].append((time.perf_counter() - begin) / CALLS)
    seconds = {name: statistics.median(t) for name, t in times.items()}
    on_companion = seconds["companion"] < seconds["device"]
    cache.put(make_entry(device_key(device, graph, batch), {"companion": int(on_companion)},
                         min(seconds.values()), seconds["device"]))
    return DeviceChoice(batch, on_companion, seconds)


def describe(choice: DeviceChoice) -> str:
    d, c = choice.seconds["device"] * 1e3, choice.seconds["companion"] * 1e3
    where = "its one-thread companion" if choice.companion else "the device itself"
    return (f"forward pass at batch {choice.batch}: runs on {where} (timed: the device "
            f"{d:.3f} ms, the companion {c:.3f} ms a pass)")
