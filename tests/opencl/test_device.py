"""Device discovery, probing and selection (fake device lists need no OpenCL at all)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cnnc.backends.opencl import device as dev
from cnnc.errors import DeviceError


def _fake(
    p: int,
    d: int,
    name: str,
    kind: str,
    usable: bool | None = True,
    reason: str | None = None,
    **attributes,
) -> dev.Device:
    cl = pytest.importorskip("pyopencl")
    types = {
        "gpu": cl.device_type.GPU,
        "cpu": cl.device_type.CPU,
        # Oclgrind's type: every bit at once
        "all": cl.device_type.ALL,
    }
    platform = SimpleNamespace(name="Fake Platform", version=f"OpenCL 3.0 Fake {p}")
    cl_device = SimpleNamespace(name=name, type=types[kind], platform=platform, **attributes)
    return dev.Device(p, d, cl_device, _usable=usable, _reason=reason)


@pytest.fixture
def fake_devices(monkeypatch):
    def install(found):
        monkeypatch.setattr(dev, "_DEVICES", list(found))
        monkeypatch.delenv("CNNC_DEVICE", raising=False)
        return found

    return install


def test_default_prefers_a_usable_gpu_then_a_cpu(fake_devices):
    cpu = _fake(0, 0, "Some CPU", "cpu")
    broken_gpu = _fake(1, 0, "Old GPU", "gpu", usable=False, reason="error: no compiler")
    gpu = _fake(1, 1, "Good GPU", "gpu")
    fake_devices([cpu, broken_gpu, gpu])
    assert dev.default_device() is gpu
    fake_devices([cpu, broken_gpu])
    assert dev.default_device() is cpu


def test_a_simulator_reporting_every_type_is_never_the_default_gpu(fake_devices):
    simulator = _fake(0, 0, "Simulator", "all")
    cpu = _fake(1, 0, "Some CPU", "cpu")
    fake_devices([simulator, cpu])
    assert simulator.kind == "simulator"
    assert dev.default_device() is cpu
    with pytest.raises(DeviceError, match="no OpenCL device matches 'gpu'"):
        dev.select_device("gpu")
    assert dev.select_device("simulator") is simulator
    fake_devices([simulator])
    assert dev.default_device() is simulator  # the last resort, still usable
    assert _fake(0, 0, "Oclgrind Simulator", "gpu").kind == "simulator"


def test_an_opencl_c_1_1_device_is_unusable_with_the_reason():
    """Mesa's Clover builds a trivial kernel but none of cnnc's (`static` needs OpenCL C 1.2):
    the probe says so without building anything."""
    clover = _fake(
        0, 0, "AMD Radeon (Clover)", "gpu", usable=None, opencl_c_version="OpenCL C 1.1 Mesa"
    )
    assert clover.opencl_c_version == (1, 1)
    assert not clover.usable
    assert "OpenCL C 1.1" in clover.reason and "OpenCL C 1.2 or newer" in clover.reason


def test_selection_by_kind_index_and_name(fake_devices):
    cpu = _fake(0, 0, "pthread-AMD EPYC", "cpu")
    gpu = _fake(1, 0, "NVIDIA H100", "gpu")
    fake_devices([cpu, gpu])
    assert dev.select_device("cpu") is cpu
    assert dev.select_device("gpu") is gpu
    assert dev.select_device("1:0") is gpu
    assert dev.select_device("h100") is gpu
    assert dev.select_device("epyc") is cpu


def test_environment_setting_is_the_default_selector(fake_devices, monkeypatch):
    cpu = _fake(0, 0, "cpu0", "cpu")
    gpu = _fake(1, 0, "gpu0", "gpu")
    fake_devices([cpu, gpu])
    monkeypatch.setenv("CNNC_DEVICE", "0:0")
    assert dev.select_device(None) is cpu


def test_a_name_matching_only_an_unusable_device_says_why_and_suggests_another(fake_devices):
    good = _fake(0, 0, "pthread-skylake-avx512-AMD EPYC", "cpu")
    bad = _fake(
        1, 0, "pthread-AMD EPYC", "cpu", usable=False, reason="error: unknown target CPU 'generic'"
    )
    fake_devices([good, bad])
    with pytest.raises(DeviceError) as err:
        dev.select_device("1:0")
    text = err.value.render()
    assert "unknown target CPU 'generic'" in text
    assert "not usable" in text and "--device 0:0" in text
    # A name matching both picks the usable one.
    assert dev.select_device("EPYC") is good


def test_unknown_selector_lists_the_devices(fake_devices):
    fake_devices([_fake(0, 0, "cpu0", "cpu")])
    with pytest.raises(DeviceError) as err:
        dev.select_device("tpu")
    assert "no OpenCL device matches 'tpu'" in err.value.message
    assert "0:0 'cpu0'" in err.value.message


def test_no_platform_at_all_says_what_to_install(fake_devices):
    fake_devices([])
    for call in (dev.default_device, lambda: dev.select_device("cpu")):
        with pytest.raises(DeviceError) as err:
            call()
        text = err.value.render()
        assert "no OpenCL platform" in text
        assert "pocl-opencl-icd" in text and "cnnc[pocl]" in text


def test_no_usable_device_names_each_reason(fake_devices):
    fake_devices([_fake(0, 0, "cpu0", "cpu", usable=False, reason="error: broken driver")])
    with pytest.raises(DeviceError) as err:
        dev.default_device()
    assert "error: broken driver" in err.value.message


def test_real_devices_are_probed_once(device):
    assert device.usable and device.reason is None
    assert device.kind in ("gpu", "cpu", "accelerator", "simulator", "other")
    assert device.compute_units >= 1 and device.global_memory > 0
    assert device.opencl_c_version >= (1, 2)
    limits = device.limits
    assert limits.max_group >= 1 and min(limits.max_item_sizes) >= 1
    assert 0 < limits.max_allocation <= limits.global_memory
    assert limits.local_memory >= 0
    ctx = device.context
    device.probe()
    assert device.context is ctx  # one context per device and process


def test_unusable_devices_report_the_driver_error(device, monkeypatch, tmp_path):
    """pip's pocl on a CPU its LLVM does not know fails to build; it must say so, not crash.
    A device on a driver made to crash in its qualification stands in for it (issue 25: the
    loop over real unusable devices had none to check on most machines), beside the real ones."""
    from test_qualification import _fake, _faulty

    monkeypatch.setenv("CNNC_VERDICT_DIR", str(tmp_path / "verdicts"))
    _faulty(monkeypatch, device, "abort@networks")
    broken = _fake(device, 9, "a driver that crashes")
    monkeypatch.setattr(dev, "_DEVICES", [broken, *dev.devices()])
    unusable = [d for d in dev.devices() if not d.usable]
    assert broken in unusable
    for d in unusable:
        assert d.reason and len(d.reason) < 300
    assert broken.reason.startswith("the driver crashed (SIGABRT) while building and running "
                                    "cnnc's kernels: LLVM ERROR:"), broken.reason


def test_devices_command_marks_the_default(device, capsys):
    from cnnc.cli import main

    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "* default device:" in out
    assert f"* {dev.default_device().index}" in out
    assert "compute units" in out and "fp64" in out
