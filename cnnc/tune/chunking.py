"""A forward pass at a large batch run as several passes at a smaller one, where the tuner
measured that faster.

At batch 256 the activations of the depthwise and residual networks (efficientnet_mini's
14 x 14 x 96 expansion: 19 MB) no longer fit in the last-level cache between one layer and the
next, and their memory-bound launches read them back from memory: on a 2-core Zen 3 (32 MiB L3)
Model.predict of 256 images in chunks of 64 ran 1.14-1.29x faster than in one pass of 256 for
efficientnet_mini, mobilenetv3_mini, shufflenet_mini and resnet_mini, while onnxruntime ran
0.58-1.0x as fast in chunks as in one. A compute-bound network (the seed model: its Winograd
GEMMs want many tiles) is slower in chunks. So it is measured, not guessed: `cnnc tune` of a
forward pass (and Model.tune) times the whole pass at the batch against the same images in
chunks of a half, a quarter and an eighth of it (at least MIN_CHUNK), with the tuned variants
(a chunk's launches take the batch's choices where they hold: CachedVariants), side by side,
and keeps the fastest chunk in the tuning cache when it beats one pass by MIN_GAIN.
Model.predict then runs that batch size in those chunks: the outputs are the same images'
(each example's outputs depend on that example alone in an inference graph).

The entry is the tuning cache's like a launch's: its key names the device, the kernel sources,
the graph (a digest of its nodes, ops, attributes and shapes: any other graph, other weights
aside, is another key), the input shapes and the batch; its variant is {"chunk": size}.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnc.ir.graph import Graph
from cnnc.tune.cache import TuningCache, make_entry, pass_key

OP = "forward_chunks"
DIVISORS = (2, 4, 8)  # the chunks timed: the batch over each, where it divides it
MIN_CHUNK = 16
MIN_GAIN = 0.05  # chunks must be this much faster than one pass to be used
ROUNDS = 7  # interleaved rounds of one pass and each chunk size
# About what tune_chunks takes (its builds, then 8 x 4 whole passes: ~5 s of them for the seed
# model at batch 256 on a Zen 3): what a tuner that extends its searches leaves of its budget.
SECONDS = 10.0


def chunk_key(device: Any, graph: Graph, batch: int) -> dict[str, Any]:
    return pass_key(device, OP, graph, batch)


def candidates(batch: int) -> list[int]:
    return [batch // d for d in DIVISORS if batch % d == 0 and batch // d >= MIN_CHUNK]


def seconds_kept(batch: int) -> float:
    """What a tuning of a forward pass at `batch` keeps of its budget for tune_chunks: SECONDS
    where a chunk size applies, none where none does (batch 1 to 31: a `cnnc tune --batch 1
    --budget 15` had kept 10 of its 15 s for chunks it never timed)."""
    return SECONDS if candidates(batch) else 0.0


def chunk_of(cache: TuningCache, device: Any, graph: Graph, batch: int) -> int:
    """The chunk the cache holds for a forward pass of `graph` at `batch` (a size that divides
    it), or `batch` itself: one pass."""
    entry = cache.get(chunk_key(device, graph, batch))
    if entry is None:
        return batch
    chunk = entry["variant"].get("chunk")
    return chunk if isinstance(chunk, int) and 0 < chunk < batch and batch % chunk == 0 \
        else batch


@dataclass
class ChunkResult:
    batch: int
    chunk: int  # the batch itself: one pass stays
    seconds: dict[int, float]  # median seconds of the whole batch, by chunk size

    @property
    def speedup(self) -> float:
        return self.seconds[self.batch] / self.seconds[self.chunk]


def time_chunks(run: Callable[[int, int], Any], batch: int, sizes: list[int],
                rounds: int = ROUNDS) -> dict[int, float]:
    """Median seconds of the whole batch run as chunks of each size (the batch itself: one
    pass), interleaved: `run(start, size)` runs the images start..start+size."""
    times: dict[int, list[float]] = {s: [] for s in sizes}
    for s in sizes:  # first runs (builds, first touches) untimed
        run(0, s)
    for _ in range(rounds):
        for s in sizes:
            begin = time.perf_counter()
            for start in range(0, batch, s):
                run(start, s)
            times[s].append(time.perf_counter() - begin)
    return {s: statistics.median(t) for s, t in times.items()}


def tune_chunks(device: Any, cache: TuningCache, graph: Graph, batch: int) -> ChunkResult | None:
    """Time one pass of `graph` (an inference graph) at `batch` against chunks of it, with the
    cache's variants, and keep the fastest chunk in the cache (where it beats one pass by
    MIN_GAIN; an entry of one pass otherwise, so that a faster chunk of an earlier tuning is
    not used any more). None where no chunk size applies."""
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.crosscheck import random_feeds
    from cnnc.initializers import initial_values
    from cnnc.tune.tuner import CachedVariants

    sizes = candidates(batch)
    if not sizes:
        return None
    backend = OpenCLBackend(device)
    backend.choose_variants = CachedVariants(backend, cache)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    feeds = random_feeds(graph, batch, 0)
    exes = {s: backend.compile(graph, s) for s in [batch, *sizes]}
    outputs = list(graph.outputs)

    def run(start: int, size: int) -> Mapping[str, np.ndarray]:
        part = feeds if size == batch else {k: v[start:start + size] for k, v in feeds.items()}
        return exes[size].run(part, outputs)

    seconds = time_chunks(run, batch, [batch, *sizes])
    best = min(sizes, key=lambda s: seconds[s])
    chunk = best if seconds[best] < seconds[batch] * (1 - MIN_GAIN) else batch
    key = chunk_key(device, graph, batch)
    cache.put(make_entry(key, {"chunk": chunk}, seconds[chunk], seconds[batch]))
    return ChunkResult(batch, chunk, seconds)


def describe(result: ChunkResult) -> str:
    figures = ", ".join(f"{'one pass' if s == result.batch else f'chunks of {s}'} "
                        f"{t * 1e3:.1f} ms" for s, t in result.seconds.items())
    if result.chunk == result.batch:
        return f"forward pass at batch {result.batch}: one pass stays ({figures})"
    return (f"forward pass at batch {result.batch}: run in chunks of {result.chunk}, "
            f"{result.speedup:.2f}x one pass ({figures})")
