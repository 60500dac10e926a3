"""Suite-wide settings and the OpenCL devices the suite runs on.

Kernel tuning is off (CNNC_TUNE=0), so every test runs the device's default kernel variants,
whatever a user's tuning cache holds (tests/tune/ turns it on where it tests the tuner, with a
cache of its own). The latency path and chains are off (CNNC_LATENCY_DEVICE=0, CNNC_CHAINS=0)
but for their own tests.

Every OpenCL driver is qualified once, by the controlling process before any test runs
(cnnc/backends/opencl/qualification.py: cnnc's kernels built and run in a child process), and
the suite runs only on the devices that qualified; the header names the others and why. The
verdicts live in one folder for the whole run (CNNC_VERDICT_DIR, inherited by every process a
test starts), so a test that points CNNC_CACHE_DIR at an empty folder does not qualify again.
The default device runs every test; another qualified device runs the representative modules
below, and the rest of its tests only with `-m all_devices`.
"""

from __future__ import annotations

import os

import pytest

from cnnc import settings

os.environ["CNNC_TUNE"] = "0"
# Small forward passes stay on the device under test, off pocl's one-thread companion
# (cnnc/backends/opencl/latency.py): otherwise every small predict would build its kernels a
# second time, for the companion. tests/opencl/test_latency_path.py turns it on.
os.environ["CNNC_LATENCY_DEVICE"] = "0"
# Small forward passes on a CPU device run a launch a layer, not in chains (cnnc/backends/
# opencl/chain.py): a chain links its own program of the pass's kernels, a second build of
# each. tests/opencl/test_chains.py turns them on; CNNC_CHAINS_TEST=1 runs the whole suite with
# them (test_ops.py, test_specs.py and tests/onnx passed so, 1,064 tests, 2026-12-07).
os.environ["CNNC_CHAINS"] = os.environ.get("CNNC_CHAINS_TEST", "0")
os.environ["CNNC_VERDICT_DIR"] = str(settings.verdict_dir())

# What a device other than the default runs unless asked for all: every op against NumPy, every
# example spec end to end, the losses.
REPRESENTATIVE = ("test_ops.py", "test_specs.py", "test_losses.py")


def _devices():
    """(every device found, the default one or None), without raising."""
    from cnnc.errors import DeviceError

    try:
        from cnnc.backends.opencl.device import default_device, devices

        found = devices()
    except DeviceError:  # no pyopencl: the OpenCL tests say why when they skip
        return [], None
    try:
        return found, default_device()
    except DeviceError:  # none qualified: tests/opencl/conftest.py fails with the reasons
        return found, None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "all_devices: a test on an OpenCL device other than the default (run them "
        "with -m all_devices)")
    if not hasattr(config, "workerinput"):  # the controller: qualify before the workers start
        found, _ = _devices()
        for d in found:
            d.probe()


def pytest_report_header(config):
    found, default = _devices()
    if not found:
        return ["opencl: no OpenCL device found: the OpenCL tests skip"]
    lines = []
    for d in found:
        if d.usable:
            role = "default, every test" if d is default else (
                "representative tests; -m all_devices for the rest")
            lines.append(f"opencl: {d.describe()}: qualified ({role})")
        else:
            lines.append(f"opencl: {d.describe()}: SKIPPED, unusable: {d.reason}")
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark the tests of devices other than the default outside the representative modules,
    before -m selects."""
    _, default = _devices()
    if default is None:
        return
    from cnnc.backends.opencl.device import Device

    for item in items:
        callspec = getattr(item, "callspec", None)
        device = callspec.params.get("device") if callspec else None
        if not isinstance(device, Device) or device.index == default.index:
            continue  # not an OpenCL device (some tests parametrise 'device' by name), or ours
        if item.path.name not in REPRESENTATIVE:
            item.add_marker(pytest.mark.all_devices)
