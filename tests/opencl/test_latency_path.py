"""The latency path (cnnc/backends/opencl/latency.py): small forward passes on pocl's one-thread
'basic' device beside the CPU device, with the model's weights, the same results as NumPy's."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnnc
from cnnc.backends.opencl.device import companion_of, devices
from cnnc.backends.opencl.latency import (
    ONE_CORE_SECONDS,
    CompanionExecutable,
    one_core_seconds,
    runs_on,
)
from cnnc.backends.opencl.runtime import OpenCLBackend, OpenCLExecutable
from cnnc.passes.pipeline import inference_graph


@pytest.fixture
def companion(device, monkeypatch):
    monkeypatch.setenv("CNNC_LATENCY_DEVICE", "1")  # the suite turns it off (conftest.py)
    found = companion_of(device)
    if found is None:
        pytest.skip(f"{device.describe()} has no one-thread companion (a pocl 'pthread-' CPU "
                    "device, with POCL_DEVICES left to cnnc)")
    if device.compute_units < 2:
        pytest.skip(f"{device.describe()} has one core: nothing to gain from the companion")
    return found


@pytest.fixture(scope="module")
def lenet():
    return cnnc.load_spec("specs/lenet5.yaml")


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 28, 28, 1), dtype=np.float32)


def test_the_companion_is_the_same_cpu_and_is_not_listed(device, companion):
    assert companion.name.startswith(("basic-", "cpu-minimal-"))
    assert companion.name.split("-", 1 + companion.name.startswith("cpu-minimal-"))[-1] == \
        device.name.split("-", 1)[1]
    assert companion.platform_index == device.platform_index
    assert companion.compute_units == 1
    assert companion.usable  # the device's qualification, not one of its own
    listed = devices()
    assert companion not in listed
    # after the platform's listed devices: their indices are what they are without it
    assert companion.device_index >= sum(d.platform_index == device.platform_index
                                         for d in listed)


def test_a_small_forward_pass_runs_on_the_companion_with_the_models_weights(
        device, companion, lenet):
    model = cnnc.compile(lenet, backend="opencl", device=device.index, seed=1)
    reference = cnnc.compile(lenet, backend="numpy", seed=1)
    exe = model.prepare(1)
    assert isinstance(exe, CompanionExecutable)
    assert exe.backend.device is companion
    x = _images(1)
    np.testing.assert_allclose(model.predict(x), reference.predict(x), atol=1e-5)
    # new weights from the host: the companion's copy follows
    weights = {k: v * 0.5 + 0.01 for k, v in model.get_weights().items()}
    model.set_weights(weights)
    reference.set_weights(weights)
    np.testing.assert_allclose(model.predict(x), reference.predict(x), atol=1e-5)
    # weights changed by training on the device: followed too
    before = model.predict(x)
    y = np.arange(16) % 10
    model.fit(_images(16, seed=2), y, batch_size=8, epochs=1, verbose=0)
    reference.set_weights(model.get_weights())
    after = model.predict(x)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, reference.predict(x), atol=1e-5)


def test_a_pass_beyond_one_cores_share_stays_on_the_device(device, companion, lenet):
    graph = inference_graph(lenet)
    small = one_core_seconds(device, graph, 1)
    assert small <= ONE_CORE_SECONDS  # (LeNet-5's 0.9 MFLOP: microseconds on any core)
    assert runs_on(device, graph, 1) is companion
    batch = math.floor(ONE_CORE_SECONDS / small) + 1
    assert runs_on(device, graph, batch) is device
    backend = OpenCLBackend(device)
    model = cnnc.compile(lenet, backend=backend, seed=0)
    assert isinstance(model.prepare(batch), OpenCLExecutable)
    assert isinstance(model.prepare(1), CompanionExecutable)


def test_training_steps_and_the_setting_keep_passes_on_the_device(
        device, companion, lenet, monkeypatch):
    model = cnnc.compile(lenet, backend="opencl", device=device.index, seed=0)
    assert isinstance(model.prepare(1, train=True), OpenCLExecutable)
    monkeypatch.setenv("CNNC_LATENCY_DEVICE", "0")
    assert runs_on(device, inference_graph(lenet), 1) is device
    assert isinstance(model.prepare(1), OpenCLExecutable)


def test_the_tests_and_the_tuners_isolated_backends_keep_their_device(device, companion, lenet):
    graph = inference_graph(lenet)
    for backend in (OpenCLBackend(device, isolate=True), OpenCLBackend(device, canary=True)):
        assert backend.companion_for(graph, 1) is None
    assert OpenCLBackend(device).companion_for(graph, 1).device is companion
