"""The runtime within a device's limits, on the devices at hand, with limits made tighter.

A plan split into several buffers (a small largest allocation) and plans made again when a
built kernel allows a smaller work-group, or needs more local memory, than the device (what a
GPU that needs many registers per work-item reports) must compute what NumPy computes.
"""

from __future__ import annotations

from math import prod

import numpy as np
import pytest
from test_ops import CASES, train_graph

from cnnc.backends.numpy import NumpyBackend
from cnnc.backends.opencl import runtime
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Limits, Target
from cnnc.backends.opencl.tiling import local_tile_bytes
from cnnc.crosscheck import random_feeds
from cnnc.initializers import initial_values

CASE = next(c for c in CASES if c.name == "conv_1x1_wide")  # tiled convolutions and GEMMs


def _gpu_tiles(device) -> Target:
    """A GPU's tiling, local tiles included, whatever the device."""
    return Target("gpu", device.compute_units, force_local_tiles=True)


def _outputs(backend, graph, batch: int) -> dict[str, np.ndarray]:
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exe = backend.compile(graph, batch)
    out = exe.run(random_feeds(graph, batch, 0), list(graph.outputs), step=1)
    return exe, out


def _assert_close(graph, batch: int, got: dict[str, np.ndarray]) -> None:
    _, want = _outputs(NumpyBackend(), graph, batch)
    for name in graph.outputs:
        scale = max(float(np.max(np.abs(want[name]))), 1e-6)
        assert np.max(np.abs(want[name] - got[name])) <= 1e-4 * scale, name


def test_a_plan_split_into_buffers_computes_the_same(device):
    graph = train_graph(CASE)
    whole, _ = _outputs(OpenCLBackend(device), graph, CASE.batch)
    largest = max(t.nbytes for t in whole.plan.memory.tensors)
    cap = -(-largest // device.base_alignment) * device.base_alignment
    kind = "cpu" if device.kind == "cpu" else "gpu"
    target = Target(kind, device.compute_units, Limits(max_allocation=cap))
    exe, got = _outputs(OpenCLBackend(device, target=target), graph, CASE.batch)
    sizes = exe.plan.memory.sizes
    assert len(sizes) > 1 and len(exe.arenas) == len(sizes) and max(sizes) <= cap
    _assert_close(graph, CASE.batch, got)


def test_a_kernel_allowing_smaller_work_groups_is_planned_again(device, monkeypatch):
    """CL_KERNEL_WORK_GROUP_SIZE of 64 (a GEMM needing many registers): local tiles of at most
    64 work-items, and the same results."""
    monkeypatch.setattr(runtime, "kernel_group_size", lambda kernel, device: 64)
    graph = train_graph(CASE)
    backend = OpenCLBackend(device, target=_gpu_tiles(device))
    exe, got = _outputs(backend, graph, CASE.batch)
    tiled = [lau for _, lau in exe.plan.launches() if lau.define_map.get("LOCAL_TILE")]
    assert tiled, "no local tiles: the test lost its point"
    assert all(prod(lau.local_size) <= 64 for _, lau in exe.plan.launches() if lau.local_size)
    assert backend.target.limits.max_group == 64
    _assert_close(graph, CASE.batch, got)


def test_a_kernel_needing_more_local_memory_is_planned_again(device, monkeypatch):
    """A driver whose kernels use local memory of their own besides the tiles: tiles that leave
    room for it, and the same results."""
    available = device.limits.local_memory
    if available < 16 * 1024:
        pytest.skip(f"{device.describe()} has {available} bytes of local memory")
    overhead = available - 6 * 1024  # room for tiles of 6 KiB, not the 8 KiB of 16 x 16 x 16
    real = runtime.kernel_local_memory
    monkeypatch.setattr(
        runtime, "kernel_local_memory", lambda kernel, device: real(kernel, device) + overhead
    )
    graph = train_graph(CASE)
    backend = OpenCLBackend(device, target=_gpu_tiles(device))
    exe, got = _outputs(backend, graph, CASE.batch)
    tiled = [lau for _, lau in exe.plan.launches() if lau.define_map.get("LOCAL_TILE")]
    assert tiled, "no local tiles: the test lost its point"
    assert all(local_tile_bytes(lau.define_map) <= 6 * 1024 for lau in tiled)
    _assert_close(graph, CASE.batch, got)
