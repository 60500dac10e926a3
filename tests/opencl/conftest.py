"""Fixtures for OpenCL tests: one `device` per usable device found (CNNC_DEVICE narrows it).

Tests skip only when no OpenCL device exists at all; a machine whose devices all fail to build
kernels fails them, with the driver's reason.
"""

from __future__ import annotations

import pytest

from cnnc import settings
from cnnc.errors import DeviceError


def _devices():
    from cnnc.backends.opencl.device import devices, select_device

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
        raise DeviceError(f"OpenCL devices exist but none can build kernels: {why}")
    return usable, None


DEVICES, NO_DEVICE = _devices()


@pytest.fixture(
    params=DEVICES or [None], ids=[d.index for d in DEVICES] if DEVICES else ["no-device"]
)
def device(request):
    """A usable OpenCL device (every one found, or the one CNNC_DEVICE names)."""
    if request.param is None:
        pytest.skip(f"no OpenCL device: {NO_DEVICE}")
    return request.param


@pytest.fixture
def backend(device):
    from cnnc.backends.opencl.runtime import OpenCLBackend

    return OpenCLBackend(device)
