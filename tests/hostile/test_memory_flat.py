"""Memory stays flat over a long run of training steps (no buffer, event or table that grows):
on the path `cnnc run` takes (queued steps, their figures read in groups, as cnnc/train/loop.py
does) in the default suite, with a bound per step; the synchronous path and 2,000 steps under
-m slow."""

from __future__ import annotations

import gc
import os
import tracemalloc

import numpy as np
import pytest
from training_spec import TINY_SPEC

import cnnc
from cnnc.errors import DeviceError

STEPS = 2000
WARMUP = 200  # allocations that happen once (executables, caches, slots) are done by then
GROWTH_MB = 16


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "opencl"])
def test_memory_is_flat_over_2000_steps(backend):
    try:
        model = cnnc.compile(TINY_SPEC, backend=backend, optimizer="nadam")
    except DeviceError as err:
        pytest.skip(f"no usable OpenCL device: {err.message}")
    rng = np.random.default_rng(0)
    x = rng.random((16, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    for _ in range(WARMUP):
        model.train_step(x, y, learning_rate=1e-3)
    model.predict(x)
    before = _rss_mb()
    for step in range(WARMUP, STEPS):
        model.train_step(x, y, learning_rate=1e-3)
        if step % 100 == 0:
            model.predict(x)
            model.get_weights()
    growth = _rss_mb() - before
    assert growth < GROWTH_MB, f"{growth:.1f} MB more after {STEPS - WARMUP} more steps"


QUEUED_STEPS = 400
READ_EVERY = 8  # the loop reads its queued steps' figures in groups
# Net Python allocations a step may leave behind: Nadam's table of momentum products takes 8
# bytes a step (cnnc/ir/updates.py: bounded at 2**20 steps, for exact resume at any step).
PYTHON_BYTES_PER_STEP = 64
RSS_BYTES_PER_STEP = 8192  # and the process's resident memory (pages: coarse)


def _queued_model():
    """The tiny network on OpenCL with Nadam, and one batch to train it on."""
    try:
        model = cnnc.compile(TINY_SPEC, backend="opencl", optimizer="nadam")
    except DeviceError as err:
        pytest.skip(f"no usable OpenCL device: {err.message}")
    rng = np.random.default_rng(0)
    return (model, rng.random((16, 12, 12, 1)).astype(np.float32), rng.integers(0, 10, 16))


def test_queued_training_steps_leave_nothing_behind():
    """Issue 25: the production path (Model.queue_train_step, read_queued_steps), measured
    per step: Python's own allocations (tracemalloc, exact) and the resident set (which also
    sees the driver's), after the first steps' one-time allocations."""
    model, x, y = _queued_model()

    def run(steps: int) -> None:
        for step in range(steps):
            model.queue_train_step(x, y, learning_rate=1e-3)
            if step % READ_EVERY == READ_EVERY - 1:
                assert len(model.read_queued_steps()) == READ_EVERY

    run(WARMUP)
    tracemalloc.start()
    try:
        gc.collect()  # garbage (reference cycles) is not kept memory
        before_py, before_rss = tracemalloc.get_traced_memory()[0], _rss_mb()
        run(QUEUED_STEPS)
        gc.collect()
        after_py, after_rss = tracemalloc.get_traced_memory()[0], _rss_mb()
        # The resident set once more over as many steps: a leak grows it in both stretches,
        # while a one-time allocation of the driver's (its worker threads' arenas, grown when
        # the machine's load changes under a parallel test run: 3.5 MB once in CI) falls in one.
        run(QUEUED_STEPS)
        gc.collect()
        again_rss = _rss_mb()
    finally:
        tracemalloc.stop()
    per_step_py = (after_py - before_py) / QUEUED_STEPS
    per_step_rss = min(after_rss - before_rss, again_rss - after_rss) * 2**20 / QUEUED_STEPS
    assert per_step_py < PYTHON_BYTES_PER_STEP, (
        f"{per_step_py:.0f} bytes of Python objects kept per queued step")
    assert per_step_rss < RSS_BYTES_PER_STEP, (
        f"{per_step_rss:.0f} bytes of resident memory more per queued step")


@pytest.mark.slow
def test_memory_is_flat_over_2000_queued_steps():
    model, x, y = _queued_model()
    before = None
    for step in range(STEPS):
        if step == WARMUP:
            model.read_queued_steps()
            before = _rss_mb()
        model.queue_train_step(x, y, learning_rate=1e-3)
        if step % READ_EVERY == READ_EVERY - 1:
            model.read_queued_steps()
    growth = _rss_mb() - before
    assert growth < GROWTH_MB, f"{growth:.1f} MB more after {STEPS - WARMUP} more steps"
