"""Driver qualification (cnnc/backends/opencl/qualification.py, cnnc/qualify.py): a driver that
crashes or hangs on cnnc's kernels is found in a child process, reported unusable with the
reason and the driver to use instead, remembered, and never picked; one whose binaries crash
keeps running with the binary cache off; the qualification's networks build every kernel cnnc
ships.

The broken drivers are the real child process told to fail (`--fault abort@STAGE`, the way
pip's pocl 3.0-rc2 dies on a Zen 4: an LLVM abort or a segfault) or to hang.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from cnnc.backends.opencl import device as dev
from cnnc.backends.opencl import kernel_files, program, qualification
from cnnc.cli import main
from cnnc.errors import DeviceError

# Kernels no network runs: what only tests use.
NOT_IN_NETWORKS = {("random.cl", "uniform"): "the dropout mask's uniforms, for tests",
                   ("peak.cl", "fma_peak"): "cnnc bench's probe of the device's FMA peak"}
# Kernels only plans for chains bind (CPU devices' small forward passes): a GPU never runs them.
CHAINS_ONLY = {("gemv.cl", "gemv_parts"): "a chain's gemv", ("gemv.cl", "gemv_sum"): "its sum"}


@pytest.fixture
def verdicts(tmp_path, monkeypatch):
    """An empty verdict folder: every qualification in the test runs anew."""
    folder = tmp_path / "verdicts"
    monkeypatch.setenv("CNNC_VERDICT_DIR", str(folder))
    return folder


def _faulty(monkeypatch, device, fault: str, timeout: float | None = None) -> None:
    """Make every qualification child behave as a broken driver (fault 'abort@networks'), on
    the real `device` whatever device it is asked to qualify."""
    real = qualification.child_command

    def command(index: str, name: str) -> list[str]:
        return real(device.index, device.name) + [f"--fault={fault}"]

    monkeypatch.setattr(qualification, "child_command", command)
    if timeout is not None:
        monkeypatch.setenv("CNNC_QUALIFY_TIMEOUT", str(timeout))


def _fake(device, index: int, identity: str) -> dev.Device:
    """Another device on the same driver, qualified under an identity of its own."""
    fake = dev.Device(index, 0, device.cl_device)
    fake.__dict__["identity"] = identity  # the cached_property's slot
    fake.__dict__["kind"] = "cpu"
    return fake


def test_a_driver_that_crashes_is_unusable_with_the_stage_and_the_driver_s_words(
        device, verdicts, monkeypatch):
    _faulty(monkeypatch, device, "abort@networks")
    verdict = qualification.qualify(device.index, device.name, "crashing driver")
    assert not verdict.usable
    assert verdict.stage == "networks"
    assert verdict.reason.startswith(
        "the driver crashed (SIGABRT) while building and running cnnc's kernels: LLVM ERROR: "
        "a test asked this qualification to abort"), verdict.reason
    # Remembered: the next process reads the verdict instead of running a child.
    monkeypatch.setattr(qualification, "child_command",
                        lambda i, n: [sys.executable, "-c", "raise SystemExit(3)"])
    again = qualification.qualify(device.index, device.name, "crashing driver")
    assert again.cached and again.reason == verdict.reason
    fresh = qualification.qualify(device.index, device.name, "crashing driver", fresh=True)
    assert fresh.reason.startswith("the qualification process exited with status 3 while "
                                   "starting")


def test_a_driver_that_hangs_is_unusable_after_the_time_limit(device, verdicts, monkeypatch):
    _faulty(monkeypatch, device, "hang@probe", timeout=3)
    start = time.perf_counter()
    verdict = qualification.qualify(device.index, device.name, "hanging driver")
    assert time.perf_counter() - start < 30
    assert not verdict.usable
    assert verdict.reason == "the driver hung: no answer in 3 s while running a probe kernel"
    assert verdict.hangs == 1


def test_a_hang_is_believed_only_when_it_happens_again(device, verdicts, monkeypatch, capsys):
    """A qualification on a busy machine can run past its limit: one hang is tried again by
    the next process (here it answers), two in a row are remembered like a crash."""
    _faulty(monkeypatch, device, "hang@probe", timeout=3)
    assert qualification.qualify(device.index, device.name, "slow driver").hangs == 1
    _faulty(monkeypatch, device, "abort@networks", timeout=600)  # the retry answers
    retried = qualification.qualify(device.index, device.name, "slow driver")
    assert not retried.cached and retried.hangs == 0 and retried.stage == "networks"
    assert "again: the last qualification got no answer in time" in capsys.readouterr().err

    _faulty(monkeypatch, device, "hang@probe", timeout=3)
    first = qualification.qualify(device.index, device.name, "hanging driver")
    second = qualification.qualify(device.index, device.name, "hanging driver")
    assert (first.cached, first.hangs, second.cached, second.hangs) == (False, 1, False, 2)
    monkeypatch.setattr(qualification, "child_command",
                        lambda i, n: [sys.executable, "-c", "raise SystemExit(3)"])
    third = qualification.qualify(device.index, device.name, "hanging driver")
    assert third.cached and third.hangs == 2 and not third.usable


def test_a_driver_whose_binaries_crash_runs_with_the_binary_cache_off(
        device, verdicts, monkeypatch, tmp_path):
    _faulty(monkeypatch, device, "abort@binaries")
    verdict = qualification.qualify(device.index, device.name, "no-binaries driver")
    assert verdict.usable and not verdict.binaries
    assert verdict.binaries_reason.startswith(
        "the driver crashed (SIGABRT) while retrieving program binaries")
    # A device on that driver builds from source and leaves the disk cache alone.
    fake = _fake(device, 8, "no-binaries driver")
    assert fake.usable and not fake.binaries
    monkeypatch.setenv("CNNC_CACHE_DIR", str(tmp_path / "cache"))
    cache = program.ProgramCache(fake)
    cache.program("elementwise.cl", "add", {"VW": 1})
    assert cache.records and not cache.records[0].from_disk
    assert not list((tmp_path / "cache").rglob("*.bin"))
    assert cache.store(list(cache.programs)) == 0


def test_an_unusable_device_is_listed_refused_and_never_the_default(
        device, verdicts, monkeypatch, capsys):
    _faulty(monkeypatch, device, "abort@networks")
    broken = _fake(device, 9, "broken driver")
    monkeypatch.setattr(dev, "_DEVICES", [broken, device])  # listed first
    assert dev.default_device() is device
    with pytest.raises(DeviceError) as err:
        dev.select_device("9:0")
    assert "is unusable: the driver crashed (SIGABRT) while building and running" in str(
        err.value)
    assert f"--device {device.index}" in (err.value.hint or "")
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"9:0 .*\n.*\n.*\n +unusable: the driver crashed \(SIGABRT\)", out), out
    assert "fix: use Debian's pocl" in out
    assert f"* default device: {device.index}" in out


def test_a_damaged_or_older_verdict_is_qualified_again(device, verdicts, monkeypatch):
    _faulty(monkeypatch, device, "abort@probe")
    path = qualification.verdict_path("some driver")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert qualification.qualify(device.index, device.name, "some driver").stage == "probe"
    path.write_text('{"format": 0, "usable": true}')
    assert not qualification.qualify(device.index, device.name, "some driver").usable


def test_the_seconds_waited_for_a_qualification_are_counted_and_a_remembered_one_waits_none(
        device, verdicts, monkeypatch):
    # `cnnc tune` takes them out of its budget (commands/tune.py spent_before).
    _faulty(monkeypatch, device, "abort@probe")
    before = qualification.seconds_waited()
    start = time.perf_counter()
    qualification.qualify(device.index, device.name, "some driver")
    took = time.perf_counter() - start
    waited = qualification.seconds_waited() - before
    assert 0 < waited <= took
    qualification.qualify(device.index, device.name, "some driver")  # remembered
    assert qualification.seconds_waited() - before == waited


def test_a_verdict_depends_on_the_kernel_sources(monkeypatch, tmp_path):
    before = qualification.verdict_key("driver")
    folder = tmp_path / "kernels"
    folder.mkdir()
    for path in program.kernel_dir().iterdir():
        if path.suffix in (".cl", ".h"):
            (folder / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(kernel_files, "kernel_dir", lambda: folder)
    assert qualification.verdict_key("driver") == before
    (folder / "gemm.cl").write_text((folder / "gemm.cl").read_text() + "\n// changed\n")
    assert qualification.verdict_key("driver") != before
    assert qualification.verdict_key("other driver") != before


def _kernels_in_sources() -> set[tuple[str, str]]:
    found = set()
    for path in sorted(Path(program.kernel_dir()).glob("*.cl")):
        for m in re.finditer(r"__kernel\s+(?:__attribute__\(\([^)]*\)\)\s+)?void\s+(\w+)",
                             path.read_text()):
            found.add((path.name, m.group(1)))
    return found


def test_the_qualification_builds_and_checks_every_kernel_cnnc_ships(device):
    """The child's networks, run here: each checks out against NumPy, and together they build
    every kernel in kernels/*.cl. A new kernel fails this until the networks use it."""
    from cnnc import qualify

    program.forget_programs()
    try:
        cache = program.program_cache(device)
        assert qualify.run_networks(device) is None
        assert qualify.check_recorded_step(device) is None
        built = set()
        for file, options in cache.programs:
            for option in options:
                m = re.fullmatch(r"-D([A-Z0-9_]+)=1", option)
                if m and (file, m.group(1).lower()) in _kernels_in_sources():
                    built.add((file, m.group(1).lower()))
    finally:
        program.forget_programs()
    chains_only = set() if device.kind == "cpu" else set(CHAINS_ONLY)
    missing = _kernels_in_sources() - built - set(NOT_IN_NETWORKS) - chains_only
    assert not missing, f"kernels the qualification never builds: {sorted(missing)}"
    assert set(NOT_IN_NETWORKS) <= _kernels_in_sources()
