"""Fixtures for OpenCL tests: one `device` per qualified device (CNNC_DEVICE narrows it), the
default first.

Tests skip only when no OpenCL device exists at all; a machine whose devices all fail their
qualification fails them, with each driver's reason. Devices that failed beside one that
qualified are left out (tests/conftest.py names them in the header).
"""

from __future__ import annotations

import pytest

from cnnc import settings
from cnnc.errors import DeviceError


def _devices():
    from cnnc.backends.opencl.device import default_device, devices, select_device

    try:
        found = devices()
    except DeviceError:  # pyopencl missing or broken
        return [], "pyopencl cannot be loaded"
    if not found:
        return [], "no OpenCL platform or device found (install pocl-opencl-icd or cnnc[pocl])"
    selector = settings.device_selector()
    if selector:
        return [select_device(selector)], None
    usable = [d for d in found if d.usable]
    if not usable:
        why = "; ".join(f"{d.describe()}: {d.reason}" for d in found)
        raise DeviceError(f"OpenCL devices exist but none can run cnnc's kernels: {why}")
    default = default_device()
    return [default, *(d for d in usable if d is not default)], None


DEVICES, NO_DEVICE = _devices()


@pytest.fixture(
    params=DEVICES or [None], ids=[d.index for d in DEVICES] if DEVICES else ["no-device"]
)
def device(request):
    """A qualified OpenCL device (every one found, or the one CNNC_DEVICE names)."""
    if request.param is None:
        pytest.skip(f"no OpenCL device: {NO_DEVICE}")
    return request.param


@pytest.fixture
def backend(device):
    from cnnc.backends.opencl.runtime import OpenCLBackend

    return OpenCLBackend(device)


@pytest.fixture
def chains_on(device, monkeypatch):
    """The device, with chains (cnnc/backends/opencl/chain.py) on: the suite turns them off
    (tests/conftest.py); skipped where the device cannot run them."""
    monkeypatch.setenv("CNNC_CHAINS", "1")
    if device.kind != "cpu" or device.compute_units < 2:
        pytest.skip(f"{device.describe()} is not a CPU device of several cores: no chains")
    return device
