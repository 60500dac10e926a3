"""`cnnc doctor`: OK / WARN / FAIL lines with their fixes, and exit status 1 on any FAIL.

One run on the real machine (every device shows its driver's qualification); the failures are
made by breaking one thing at a time: a read-only cache, a stale lock, no device, a driver that
failed its qualification, a driver file naming a missing library, an old Python.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from cnnc import doctor
from cnnc.backends.opencl import device as dev
from cnnc.cli import main


def _doctor(capsys, *args: str) -> tuple[int, str]:
    status = main(["doctor", *args])
    return status, capsys.readouterr().out


def _lines(out: str, status: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(status)]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("CNNC_CACHE_DIR", str(folder))
    (folder / "opencl").mkdir(parents=True)
    return folder / "opencl"


def test_doctor_on_this_machine(device, capsys):
    status, out = _doctor(capsys)
    unusable = [d for d in dev.devices() if not d.usable]
    assert status == (1 if unusable else 0), out
    assert len(_lines(out, "FAIL")) == len(unusable), out  # a driver that failed is a FAIL
    for d in unusable:
        assert f"FAIL  device {d.index}: unusable: {d.reason}" in out
    for topic in ("python", "numpy", "pyopencl", "icd loader", "icd vendors", "kernel cache",
                  "default device", "dataset fashion_mnist"):
        assert re.search(rf"^OK +{topic}: ", out, re.MULTILINE), (topic, out)
    assert f"OK    device {device.index}: " in out
    assert re.search(rf"device {device.index}: .*work-groups of up to \d+", out)
    assert re.search(rf"OK +device {device.index}: qualified: every cnnc kernel builds and runs, "
                     r"and small networks' forward passes and training steps match NumPy "
                     r"\((remembered from|qualified now).*s, in a child process\)", out), out
    assert re.search(rf"^doctor: \d+ OK, \d+ WARN, {len(unusable)} FAIL$", out, re.MULTILINE)


def test_an_unwritable_cache_fails_with_the_fix(device, tmp_path, capsys,
                                               monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a file where the cache folder's parent should be
    monkeypatch.setenv("CNNC_CACHE_DIR", str(blocker / "cache"))
    status, out = _doctor(capsys)
    assert status == 1
    assert f"FAIL  kernel cache: {blocker}/cache/opencl is not writable" in out
    assert "fix: set CNNC_CACHE_DIR to a writable folder" in out


def test_a_stale_lock_and_leftover_temporaries_are_reported_with_the_fix(
    device, cache, capsys, monkeypatch
):
    lock = cache / "lock"  # pyopencl's, from before cnnc kept its own cache without locks
    lock.write_text("")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    (cache / ".abc.bin.999999999.x1y2.tmp").write_bytes(b"half a program")  # a killed writer
    (cache / f".def.bin.{os.getpid()}.x1y2.tmp").write_bytes(b"being written")  # a live one
    monkeypatch.setattr(dev, "_DEVICES", [device])  # a driver that failed elsewhere is a FAIL
    status, out = _doctor(capsys)
    assert status == 0, out  # neither blocks a run any more
    assert f"WARN  kernel cache: stale lock {lock}" in out and f"fix: delete it: rm {lock}" in out
    assert "WARN  kernel cache: 1 temporary files of killed processes" in out


def test_lock_files_naming_a_process_are_stale_only_once_it_is_gone(tmp_path):
    mine = tmp_path / "mine.lock"
    mine.write_text(f"{os.getpid()}\n")
    gone = tmp_path / "gone.lock"
    gone.write_text("999999999\n")  # beyond any pid_max
    fresh = tmp_path / "lock"
    fresh.write_text("")
    assert doctor.stale_locks(tmp_path) == [gone]
    later = time.time() + doctor.STALE_LOCK_SECONDS + 1
    assert sorted(doctor.stale_locks(tmp_path, now=later)) == sorted([gone, fresh])


def test_no_device_fails_and_says_what_to_install(cache, capsys, monkeypatch):
    pytest.importorskip("pyopencl")
    monkeypatch.setattr(dev, "_DEVICES", [])
    status, out = _doctor(capsys)
    assert status == 1
    assert "FAIL  devices: no OpenCL platform or device found" in out
    assert "pocl-opencl-icd" in out


def test_a_device_computing_wrong_results_fails(device, cache, capsys, monkeypatch):
    wrong = dev.Device(9, 0, device.cl_device, _usable=False, _reason=(
        "the forward pass of a small network differs from NumPy at node 'dense'"))
    monkeypatch.setattr(dev, "_DEVICES", [device, wrong])
    status, out = _doctor(capsys)
    assert status == 1
    assert ("FAIL  device 9:0: unusable: the forward pass of a small network differs from "
            "NumPy at node 'dense'") in out
    assert f"(meanwhile cnnc uses {device.index})" in out


def test_an_unusable_device_fails_with_the_driver_to_use_instead(device, cache, capsys,
                                                                 monkeypatch):
    broken = dev.Device(9, 0, device.cl_device, _usable=False,
                        _reason="the driver crashed (SIGSEGV) while building and running "
                                "cnnc's kernels")
    monkeypatch.setattr(dev, "_DEVICES", [device, broken])
    status, out = _doctor(capsys)
    assert status == 1, out  # shown as FAIL even where another device is usable
    assert "FAIL  device 9:0: unusable: the driver crashed (SIGSEGV)" in out
    assert f"OK    default device: cnnc uses {device.index}" in out
    if device.kind == "cpu":
        assert "fix: use Debian's pocl (`apt-get install pocl-opencl-icd`" in out
    monkeypatch.setattr(dev, "_DEVICES", [broken])
    status, out = _doctor(capsys)
    assert status == 1
    assert "FAIL  default device: no OpenCL device can run cnnc's kernels" in out


def test_binaries_off_is_a_warning(device, cache, capsys, monkeypatch):
    from cnnc.backends.opencl.qualification import Verdict

    no_binaries = dev.Device(9, 0, device.cl_device, _usable=True, verdict=Verdict(
        usable=True, binaries=False, binaries_reason="the driver crashed (SIGSEGV) while "
        "retrieving program binaries", seconds=12.5, when=1.0, cached=True))
    monkeypatch.setattr(dev, "_DEVICES", [no_binaries])
    status, out = _doctor(capsys)
    assert status == 0, out
    assert ("WARN  device 9:0: programs are built from source at every start: binaries are not "
            "cached (the driver crashed (SIGSEGV) while retrieving program binaries)") in out
    assert "OK    device 9:0: qualified: every cnnc kernel" in out and "12.5 s" in out


def test_a_driver_file_naming_a_missing_library_is_a_warning(tmp_path, monkeypatch):
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    (vendors / "gone.icd").write_text("/nowhere/libgone.so\n")
    monkeypatch.setenv("OCL_ICD_VENDORS", str(vendors))
    findings = list(doctor.check_icd())
    bad = [f for f in findings if f.status == doctor.WARN]
    assert bad and "libgone.so, which is not installed" in bad[0].message
    assert f"remove {vendors / 'gone.icd'}" in bad[0].fix


def test_an_old_python_fails(monkeypatch):
    monkeypatch.setattr(doctor, "MIN_PYTHON", (99, 0))
    (finding,) = doctor.check_python()
    assert finding.status == doctor.FAIL and finding.fix == "use Python 99.0 or newer"


def test_the_tuning_cache_is_reported_per_device_with_what_the_kernels_can_use(cache, capsys):
    """Issue 23: the line was a fixed 'none' whatever `cnnc tune` had stored."""
    from cnnc.tune import cache as tc

    device = {"device": "pthread-some-long-device-name-not-cut", "driver": "1", "platform": "p"}

    def entry(batch: int, kernels: str | None = None) -> dict:
        key = tc.make_key(device, "conv2d", [[batch, 5, 5, 3], [batch, 5, 5, 8]], {}, batch)
        if kernels is not None:
            key["kernels"] = kernels
        return tc.make_entry(key, {"algo": "direct", "MR": 4, "VW": 8, "NV": 1}, 0.001, 0.002)

    findings = list(doctor.check_tuning_cache())
    assert [f.status for f in findings] == [doctor.OK]
    assert "no tunings" in findings[0].message and "cnnc tune" in findings[0].fix

    tuning = tc.TuningCache.default()
    tuning.store({tc.entry_id(e["key"]): e
                  for e in [entry(1), entry(2), entry(3, kernels="0" * 64)]})
    findings = list(doctor.check_tuning_cache())
    assert len(findings) == 1 and findings[0].status == doctor.OK
    assert f"2 tuned launches for {device['device']!r}" in findings[0].message
    assert "1 more for earlier kernel sources" in findings[0].message

    tuning.store({tc.entry_id(e["key"]): e for e in [entry(5, kernels="1" * 64)]})
    other = {**device, "device": "another device"}
    old = tc.make_entry({**tc.make_key(other, "conv2d", [[1, 5, 5, 3]], {}, 1),
                         "kernels": "2" * 64}, {"algo": "direct", "MR": 4, "VW": 8, "NV": 1},
                        0.001, 0.002)
    tuning.store({tc.entry_id(old["key"]): old})
    findings = list(doctor.check_tuning_cache())
    assert [f.status for f in findings] == [doctor.WARN, doctor.OK]  # sorted by device name
    assert "0 tuned launches for 'another device'" in findings[0].message
    assert "cnnc tune" in findings[0].fix
