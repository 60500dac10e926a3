"""Memory stays flat over a long run of training steps (no buffer, event or table that grows)."""

from __future__ import annotations

import os

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
