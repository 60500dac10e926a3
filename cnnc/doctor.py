"""`cnnc doctor`'s checks: why cnnc cannot run here, or runs slowly, each with its fix.

Each check yields `Finding`s (OK, WARN or FAIL, a topic, what was found, and for WARN and FAIL
what to do). They cover, in order: Python, NumPy and pyopencl; the OpenCL ICD loader and the
vendor files it reads; every platform and device with its limits and its driver's
qualification (backends/opencl/qualification.py: every cnnc kernel built and run, and small
networks checked against the NumPy reference, in a child process that a crashing driver cannot
take down; remembered, or run again with --requalify); the device cnnc would pick; the kernel cache (where, size, writable,
stale locks and temporary files of killed processes); the datasets found. Nothing here raises for a broken installation: that is what
the findings report.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnc import settings
from cnnc.errors import CnncError

OK, WARN, FAIL = "OK", "WARN", "FAIL"
MIN_PYTHON = (3, 10)
STALE_LOCK_SECONDS = 120  # pyopencl holds its cache lock for one build at a time

@dataclass(frozen=True)
class Finding:
    status: str  # OK | WARN | FAIL
    topic: str  # 'python', 'device 0:1', 'kernel cache', ...
    message: str
    fix: str | None = None


def _mib(nbytes: float) -> str:
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.1f} GiB"
    if nbytes >= 2**20:
        return f"{nbytes / 2**20:.1f} MiB"
    return f"{nbytes / 2**10:.0f} KiB"


# ---------------------------------------------------------------- Python and packages


def check_python() -> Iterator[Finding]:
    version = ".".join(str(v) for v in sys.version_info[:3])
    if sys.version_info[:2] < MIN_PYTHON:
        yield Finding(
            FAIL,
            "python",
            f"Python {version} ({sys.executable})",
            f"use Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer",
        )
    else:
        yield Finding(OK, "python", f"Python {version} ({sys.executable})")


def check_packages() -> Iterator[Finding]:
    import numpy as np

    yield Finding(OK, "numpy", f"NumPy {np.__version__}")
    try:
        import pyopencl as cl
    except ImportError as err:
        yield Finding(
            FAIL,
            "pyopencl",
            f"pyopencl cannot be imported ({err})",
            "reinstall cnnc with its dependencies: pip install -e '.[pocl]' (scripts/setup.sh)",
        )
        return
    yield Finding(OK, "pyopencl", f"pyopencl {cl.VERSION_TEXT}")


# ---------------------------------------------------------------- the ICD loader


def _loaded_libraries(fragment: str) -> list[str]:
    """Shared libraries of this process whose path contains `fragment` (Linux: /proc)."""
    try:
        text = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    found = {line.split()[-1] for line in text.splitlines() if fragment in line and "/" in line}
    return sorted(found)


LIBRARY_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
    "/lib/x86_64-linux-gnu",
    "/lib",
)


def _library_found(name: str, icd_file: Path) -> bool:
    """Whether the loader can open the library an .icd file names (a path, or a bare name
    searched in the usual folders and LD_LIBRARY_PATH)."""
    path = Path(name)
    if path.is_absolute():
        return path.exists()
    folders = [*settings.library_path(), *LIBRARY_DIRS, str(icd_file.parent)]
    return any((Path(folder) / name).exists() for folder in folders)


def vendor_files() -> list[tuple[Path, str]]:
    """(.icd file, the library it names) for every vendor file the ICD loader may read: the
    folder $OCL_ICD_VENDORS names (or the file), else /etc/OpenCL/vendors, and the one pyopencl's
    wheel bundles with its own loader."""
    places: list[Path] = []
    env = settings.icd_vendors()
    if env:
        places.append(Path(env))
    else:
        places.append(Path("/etc/OpenCL/vendors"))
    try:
        import pyopencl

        places.append(Path(pyopencl.__file__).parent / ".libs")
    except ImportError:
        pass
    found = []
    for place in places:
        files = [place] if place.is_file() else sorted(place.glob("*.icd"))
        for icd in files:
            try:
                library = icd.read_text().strip()
            except OSError:
                library = ""
            found.append((icd, library))
    return found


def check_icd() -> Iterator[Finding]:
    try:
        import pyopencl as cl
    except ImportError:
        return
    settings.pin_cpu_threads()  # as the devices' enumeration does: pocl starts here
    try:
        platforms = cl.get_platforms()  # loads the loader and the vendor libraries
    except cl.Error:  # no platform at all: the devices check says what to install
        platforms = []
    yield Finding(OK, "icd platforms", f"{len(platforms)} OpenCL platform(s)")
    loaders = _loaded_libraries("libOpenCL")
    if loaders:
        bundled = any("pyopencl" in path for path in loaders)
        note = " (bundled with the pyopencl wheel: ocl-icd)" if bundled else ""
        yield Finding(OK, "icd loader", f"{', '.join(loaders)}{note}")
    env = settings.icd_vendors()
    where = f"$OCL_ICD_VENDORS={env}" if env else "/etc/OpenCL/vendors"
    files = vendor_files()
    if not files:
        yield Finding(
            FAIL,
            "icd vendors",
            f"no vendor files (*.icd) in {where}",
            "install an OpenCL driver: apt-get install pocl-opencl-icd (CPU), your GPU "
            "vendor's OpenCL package, or pip install 'cnnc[pocl]'",
        )
        return
    for icd, library in files:
        if library and _library_found(library, icd):
            yield Finding(OK, "icd vendors", f"{icd} -> {library}")
        else:
            yield Finding(
                WARN,
                "icd vendors",
                f"{icd} names {library or 'nothing'}, which is not installed: the loader "
                "skips this driver",
                f"reinstall that driver, or remove {icd}",
            )


# ---------------------------------------------------------------- devices


def describe_limits(device: Any) -> str:
    limits = device.limits
    sizes = "x".join(str(n) for n in limits.max_item_sizes)
    local = _mib(limits.local_memory) + (" (emulated in global memory)" if limits.local_is_global
                                         else "")
    version = device.opencl_c_version
    c_version = f"OpenCL C {version[0]}.{version[1]}" if version else "OpenCL C version unknown"
    return (
        f"{device.compute_units} compute units; {_mib(limits.global_memory)} memory, largest "
        f"buffer {_mib(limits.max_allocation)}; work-groups of up to {limits.max_group} "
        f"({sizes}); local memory {local}; fp64 {'yes' if device.fp64 else 'no'}, fp16 "
        f"{'yes' if device.fp16 else 'no'}; {c_version}"
    )


def describe_verdict(device: Any) -> str:
    """How the device's driver qualified: when, how long it took, remembered or just run."""
    verdict = device.verdict
    if verdict is None:  # a simulator: the probe kernel only
        return "a probe kernel (OpenCL C 1.2, local memory, vectors) builds and runs"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(verdict.when)) if verdict.when else "?"
    how = f"remembered from {when}" if verdict.cached else "qualified now"
    return (f"qualified: every cnnc kernel builds and runs, and small networks' forward passes "
            f"and training steps match NumPy ({how}, {verdict.seconds:.1f} s, in a child "
            f"process)")


def check_devices(selector: str | None = None, requalify: bool = False) -> Iterator[Finding]:
    try:
        from cnnc.backends.opencl.device import NO_PLATFORM_HINT, devices, select_device
    except ImportError:
        return
    try:
        found = devices()
    except CnncError as err:
        yield Finding(FAIL, "devices", err.message, err.hint)
        return
    if not found:
        yield Finding(FAIL, "devices", "no OpenCL platform or device found", NO_PLATFORM_HINT)
        return
    for d in found:
        if requalify:
            d.probe(fresh=True)
    usable = [d for d in found if d.usable]
    for d in found:
        topic = f"device {d.index}"
        yield Finding(OK, topic, f"'{d.name}' ({d.kind}, {d.platform_name}, {d.platform_release})")
        yield Finding(OK, topic, describe_limits(d))
        if not d.usable:
            others = [u.index for u in usable]
            yield Finding(
                FAIL,
                topic,
                f"unusable: {d.reason}",
                d.fix + (f" (meanwhile cnnc uses {', '.join(others)})" if others else ""),
            )
            continue
        yield Finding(OK, topic, describe_verdict(d))
        verdict = d.verdict
        if verdict is not None and not verdict.binaries:
            yield Finding(WARN, topic, f"programs are built from source at every start: "
                                       f"binaries are not cached ({verdict.binaries_reason})",
                          d.fix)
        if d.kind == "simulator":
            yield Finding(WARN, topic, "a simulator (slow): cnnc takes it only when nothing else "
                                       "is usable", "select another device with --device")
    try:
        chosen = select_device(selector)
    except CnncError as err:
        yield Finding(FAIL, "default device", err.message, err.hint)
        return
    how = f"--device {selector}" if selector else (
        f"CNNC_DEVICE={settings.device_selector()}" if settings.device_selector()
        else "the first usable GPU, else CPU")
    yield Finding(OK, "default device", f"cnnc uses {chosen.describe()} ({how})")


# ---------------------------------------------------------------- caches


def _folder_size(folder: Path) -> tuple[int, int]:
    total = count = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
                count += 1
        except OSError:
            continue
    return total, count


def _writable(folder: Path) -> bool:
    """Whether cnnc can create files in `folder` (or create it, and its missing parents)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or no process at all: leave it be
    return True


def _lock_owner_alive(lock: Path) -> bool | None:
    """Whether the process a lock file names is alive; None when the file names none."""
    try:
        text = lock.read_text(errors="replace")[:200]
    except OSError:
        return None
    m = re.search(r"\b(\d{1,9})\b", text)
    return _pid_alive(int(m.group(1))) if m else None


def stale_locks(folder: Path, now: float | None = None) -> list[Path]:
    """Lock files under `folder` whose owner is gone: its recorded process is not running, or
    (pyopencl's lock names no process) it is older than any build holds it."""
    now = time.time() if now is None else now
    stale = []
    for lock in [*folder.rglob("lock"), *folder.rglob("*.lock")]:
        alive = _lock_owner_alive(lock)
        try:
            age = now - lock.stat().st_mtime
        except OSError:
            continue
        if alive is False or (alive is None and age > STALE_LOCK_SECONDS):
            stale.append(lock)
    return stale


# cnnc.atomic's temporary files: '.<name>.<pid>.<random>.tmp', left behind by a killed writer.
TEMPORARY = re.compile(r"\..+\.(?P<pid>\d+)\.[^.]+\.tmp")


def stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files under `folder` whose writer is gone (a process killed mid-write)."""
    found = []
    for path in folder.rglob(".*.tmp"):
        m = TEMPORARY.fullmatch(path.name)
        if m and int(m["pid"]) != os.getpid() and not _pid_alive(int(m["pid"])):
            found.append(path)
    return found


def check_caches() -> Iterator[Finding]:
    folder = settings.cache_dir() / "opencl"
    size, count = _folder_size(folder) if folder.is_dir() else (0, 0)
    if not _writable(folder):
        yield Finding(
            FAIL,
            "kernel cache",
            f"{folder} is not writable: every run builds its kernels again",
            "set CNNC_CACHE_DIR to a writable folder",
        )
    else:
        state = f"{_mib(size)} in {count} files" if count else "empty (kernels build on first use)"
        yield Finding(OK, "kernel cache", f"{folder}: {state}, writable")
    if folder.is_dir():
        # cnnc's cache takes no lock (binary_cache.py); pyopencl's used to, and one left by a
        # killed process made every later run wait and fail. Harmless now, but still clutter.
        for lock in stale_locks(folder):
            yield Finding(
                WARN,
                "kernel cache",
                f"stale lock {lock} (left by a killed process; cnnc no longer waits on it)",
                f"delete it: rm {lock}",
            )
        leftovers = stale_temporaries(folder)
        if leftovers:
            nbytes = sum(p.stat().st_size for p in leftovers if p.exists())
            yield Finding(
                WARN,
                "kernel cache",
                f"{len(leftovers)} temporary files of killed processes ({_mib(nbytes)})",
                f"delete them: rm {folder}/.*.tmp",
            )
    yield from check_tuning_cache()


def check_tuning_cache() -> Iterator[Finding]:
    """What `cnnc tune` has stored, per device, and how much of it the current kernels can use:
    an entry made for another version of the kernel sources is never looked up again."""
    from cnnc.tune.cache import TuningCache, kernel_source_hash

    cache = TuningCache.default()
    entries = list(cache.entries.values())
    if not entries:
        yield Finding(OK, "tuning cache", f"{cache.path}: no tunings; tile shapes and algorithms "
                                          "are chosen by rule from the device's kind and limits",
                      "`cnnc tune SPEC` (or `cnnc run`, which tunes on first use) fills it")
        return
    current = kernel_source_hash()
    per_device: dict[str, list[int]] = {}
    for entry in entries:
        counts = per_device.setdefault(entry["key"]["device"], [0, 0])
        counts[entry["key"]["kernels"] == current] += 1
    for device, (stale, usable) in sorted(per_device.items()):
        detail = (f"{cache.path}: {usable} tuned launch{'' if usable == 1 else 'es'} for "
                  f"{device!r}")
        if stale:
            detail += f" ({stale} more for earlier kernel sources, never used again)"
        yield Finding(OK if usable else WARN, "tuning cache", detail,
                      None if usable else "`cnnc tune SPEC` tunes for the current kernels")


# ---------------------------------------------------------------- datasets


def check_datasets() -> Iterator[Finding]:
    from cnnc.data.catalog import DATASETS
    from cnnc.data.locate import locate_dataset

    for info in DATASETS.values():
        try:
            found = locate_dataset(info, download=False, log=lambda message: None)
        except CnncError as err:
            yield Finding(
                WARN,
                f"dataset {info.name}",
                f"{info.title} is not on this machine (training on it downloads it where the "
                "network is reachable)",
                "; ".join(line.strip() for line in err.message.splitlines() if
                          line.strip()[:2] in ("1.", "2.")),
            )
            continue
        yield Finding(OK, f"dataset {info.name}", f"{found.folder} ({found.origin})")


# ---------------------------------------------------------------- all of it


def all_checks(selector: str | None = None,
               requalify: bool = False) -> list[Callable[[], Iterator[Finding]]]:
    return [
        check_python,
        check_packages,
        check_icd,
        lambda: check_devices(selector, requalify),
        check_caches,
        check_datasets,
    ]
