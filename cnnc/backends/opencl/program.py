"""Program building and caching: the second stage of the OpenCL backend.

Kernels are plain OpenCL C files in kernels/ (the `cnnc.kernels` package once installed),
specialised only by -D options made from validated integers in `build_options`. Each kernel in
a file is guarded by `#ifdef <ITS NAME IN UPPER CASE>`, and a program is built for one kernel:
the compiler sees only the code a launch needs, and a kernel's -D options never have to satisfy
its neighbours in the file. A built program is kept in memory for the rest of the process and
its binary on disk across processes (cnnc's own cache, binary_cache.py: keyed by the source,
the headers, the options and the device/driver identity, in the cnnc cache folder; no lock,
atomic writes). A failed build is a DeviceError naming the file, the options and the log. The
tuner builds many variants and keeps few: inside `deferred_writes()` programs built from source
go to the disk only when `store` names them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnc import settings
from cnnc.backends.opencl.binary_cache import (
    build_cached,
    entry_path,
    header_texts,
    include_option,
    load_entry,
    store_program,
)
from cnnc.backends.opencl.device import Device, _cl
from cnnc.backends.opencl.kernel_files import kernel_dir
from cnnc.errors import DeviceError

# -cl-mad-enable lets the compiler contract a*b+c into fused multiply-adds, which is what makes
# the register-blocked kernels fast; -cl-fast-relaxed-math would also relax exp/log/division,
# which the losses and activations do not need to give up.
BASE_OPTIONS = ("-cl-mad-enable",)

PREBUILD_THREADS = 4  # the most builds `prebuild` runs at once
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
_DEFINE_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def build_options(defines: Mapping[str, int]) -> tuple[str, ...]:
    """The build options for a set of -D defines; the only place options are made.

    Names must be upper-case identifiers and values Python ints within int32 range: a value
    from anywhere else (a string from a spec, a float, a bool) is a bug in a binding and raises.
    """
    options = list(BASE_OPTIONS)
    for name in sorted(defines):
        value = defines[name]
        if not _DEFINE_NAME.fullmatch(name):
            raise ValueError(f"bad define name {name!r}: upper-case identifiers only")
        if type(value) is not int:
            raise TypeError(f"define {name} must be an int, got {type(value).__name__} {value!r}")
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError(f"define {name}={value} is outside the int32 range")
        options.append(f"-D{name}={value}")
    return tuple(options)


def kernel_options(kernel: str, defines: Mapping[str, int]) -> tuple[str, ...]:
    """The build options of the program for one kernel of a file: its defines and the guard
    that leaves the file's other kernels out."""
    return build_options({**defines, kernel.upper(): 1})


def build_threads(device: Device, builds: int) -> int:
    """How many of `builds` to run at once: several only on pocl, whose compiles of different
    programs overlap outside the GIL (6 builds took 0.7x as long on two threads as one after
    another on 2 cores); Oclgrind crashed building on two threads (double free), and drivers
    not tried here build one program at a time."""
    if "portable computing language" not in device.platform_name.lower():
        return 1
    return min(builds, max(1, min(os.cpu_count() or 1, PREBUILD_THREADS)))


@dataclass(frozen=True)
class BuildRecord:
    """One program obtained: how long it took and whether the disk cache had it."""

    file: str
    options: tuple[str, ...]
    seconds: float
    from_disk: bool


ProgramKey = tuple[str, tuple[str, ...]]  # (file, build options)


class ProgramCache:
    """Programs for one device, built once per (file, options) in this process."""

    def __init__(self, device: Device):
        self.device = device
        self.programs: dict[ProgramKey, Any] = {}
        self.records: list[BuildRecord] = []
        self._headers: dict[str, str] | None = None  # kernels/*.h, read once
        self._defer = False
        self.paths: dict[ProgramKey, Path] = {}  # each program's entry in the disk cache
        self.unstored: set[ProgramKey] = set()  # built in deferred_writes(), not on disk
        self._recorders: list[set[ProgramKey]] = []
        # Kernels (file, options) whose chain unit did not compile (chain.py): run alone.
        self.unchainable: set[ProgramKey] = set()
        self._sources: dict[Path, str] = {}  # kernel file texts, by path

    @contextmanager
    def deferred_writes(self) -> Iterator[None]:
        """Programs built from source inside are not written to the disk cache (see `store`)."""
        saved, self._defer = self._defer, True
        try:
            yield
        finally:
            self._defer = saved

    @contextmanager
    def recording(self) -> Iterator[set[ProgramKey]]:
        """The set of the programs asked for inside (built or not), for `store`."""
        used: set[ProgramKey] = set()
        self._recorders.append(used)
        try:
            yield used
        finally:
            self._recorders.remove(used)

    def store(self, keys: Iterable[ProgramKey]) -> int:
        """Write the binaries of those of `keys` that deferred_writes() kept off the disk; how
        many were written."""
        written = 0
        if not self.device.binaries:
            return 0
        for key in keys:
            if key in self.unstored:
                self.unstored.discard(key)
                written += store_program(self.programs[key], self.paths[key])
        return written

    def prebuild(self, requests: Iterable[tuple[str, str, Mapping[str, int]]]) -> None:
        """Build the programs of (file, kernel, defines) `requests` not built yet, several at
        once where the driver allows (build_threads; elsewhere one at a time, as `program`
        does). A build that fails is left for `program` to report."""
        if build_threads(self.device, 2) < 2:
            return
        todo: dict[ProgramKey, None] = {}  # in order, once each
        for file, kernel, defines in requests:
            key = (file, kernel_options(kernel, defines))
            if key not in self.programs:
                todo[key] = None
        if len(todo) < 2:
            return
        if self._headers is None:
            self._headers = header_texts(kernel_dir())

        def build(key: ProgramKey) -> None:
            try:
                prg = self._build(*key)
            except DeviceError:
                return
            self.programs.setdefault(key, prg)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(build_threads(self.device, len(todo))) as pool:
            list(pool.map(build, todo))

    def program(self, file: str, kernel: str, defines: Mapping[str, int]) -> Any:
        options = kernel_options(kernel, defines)
        key = (file, options)
        for used in self._recorders:
            used.add(key)
        prg = self.programs.get(key)
        if prg is None:
            prg = self._build(file, options)
            self.programs[key] = prg
        return prg

    def kernel(self, file: str, name: str, defines: Mapping[str, int]) -> Any:
        """A new kernel object for one launch: its arguments are set once and kept with it."""
        cl = _cl()
        prg = self.program(file, name, defines)
        try:
            return cl.Kernel(prg, name)
        except cl.Error as err:
            raise DeviceError(f"kernel '{name}' not found in kernels/{file}: {err}") from None

    def source(self, file: str) -> str:
        """The text of kernels/`file`, read once (program builds and chain.py's units)."""
        path = kernel_dir() / file
        text = self._sources.get(path)
        if text is None:
            try:
                text = self._sources[path] = path.read_text()
            except OSError as err:
                raise DeviceError(
                    f"cannot read kernel source {path}: {err}", hint="reinstall cnnc"
                ) from None
        return text

    def _build(self, file: str, options: tuple[str, ...]) -> Any:
        cl = _cl()
        folder = kernel_dir()
        source = self.source(file)
        option_text = " ".join(options)
        cache = settings.cache_dir() / "opencl"
        if self._headers is None:
            self._headers = header_texts(folder)
        start = time.perf_counter()
        try:
            raw, from_disk = build_cached(self.device.context, self.device.cl_device, source,
                                          option_text, self._headers, cache,
                                          store=not self._defer, disk=self.device.binaries,
                                          include=str(folder))
        except cl.Error as err:
            raise DeviceError(
                f"building kernels/{file} failed on {self.device.describe()} with options "
                f"'{' '.join(options)}':\n{_build_log(err)}",
                hint="pick another device with --device, or report this with the log",
            ) from None
        self.records.append(
            BuildRecord(file, options, time.perf_counter() - start, bool(from_disk))
        )
        key = (file, options)
        self.paths[key] = entry_path(self.device.cl_device, source, option_text, self._headers,
                                     cache)
        if self._defer and not from_disk:
            self.unstored.add(key)
        return raw  # the _Program: pyopencl's Program wrapper would look up attributes as kernels


def _build_log(err: Exception) -> str:
    text = str(err)
    # pyopencl repeats 'clBuildProgram failed' several times before the log; keep the log.
    lines = [ln for ln in text.splitlines() if ln.strip() and "clBuildProgram failed" not in ln]
    return "\n".join(lines[:60]) if lines else text


# One cache per device, shared by every executable of the process.
_CACHES: dict[str, ProgramCache] = {}


def forget_programs() -> None:
    """Drop every program built in this process (the next ones come from the disk cache)."""
    _CACHES.clear()


def program_cache(device: Device) -> ProgramCache:
    key = f"{device.index}|{device.name}|{device.platform_version}"
    if key not in _CACHES:
        _CACHES[key] = ProgramCache(device)
    return _CACHES[key]


def kernel_group_size(kernel: Any, device: Device) -> int:
    """CL_KERNEL_WORK_GROUP_SIZE: the most work-items per group this built kernel allows."""
    cl = _cl()
    info = cl.kernel_work_group_info.WORK_GROUP_SIZE
    return int(kernel.get_work_group_info(info, device.cl_device))


def kernel_local_memory(kernel: Any, device: Device) -> int:
    """CL_KERNEL_LOCAL_MEM_SIZE: bytes of local memory this built kernel uses."""
    cl = _cl()
    info = cl.kernel_work_group_info.LOCAL_MEM_SIZE
    return int(kernel.get_work_group_info(info, device.cl_device))


class UnitFailed(DeviceError):
    """A compile unit of link_cached did not compile: `index` says which."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


def link_cached(programs: ProgramCache, units: list[tuple[str, tuple[str, ...]]],
                main: str) -> Any:
    """A program linked from compile units (source, build options) and a main unit built
    without options (chain.py's chains), from the disk cache when it holds it. A unit that
    does not compile is a UnitFailed naming it, with the log; a failed link a DeviceError."""
    cl = _cl()
    from pyopencl import _cl as raw

    device = programs.device
    folder = kernel_dir()
    if programs._headers is None:
        programs._headers = header_texts(folder)
    # One text for the key: every unit's options and source, then the main unit's.
    joined = "\n".join(f"/* {' '.join(options)} */\n{source}" for source, options in units)
    key_text = f"{joined}\n/* main */\n{main}"
    cache = settings.cache_dir() / "opencl"
    path = entry_path(device.cl_device, key_text, "link", programs._headers, cache)
    if device.binaries:
        program = load_entry(device.context, device.cl_device, path, b"")
        if program is not None:
            return program
    include = include_option(str(folder))
    start = time.perf_counter()

    def compile_unit(index: int) -> Any:
        source, options = units[index]
        unit = raw._Program(device.context, source)
        try:
            unit.compile(f"{' '.join(options)} {include}".encode(), [device.cl_device])
        except cl.Error:
            return index, unit.get_build_info(device.cl_device, cl.program_build_info.LOG)
        return unit

    workers = build_threads(device, len(units))
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            compiled = list(pool.map(compile_unit, range(len(units))))
    else:
        compiled = [compile_unit(i) for i in range(len(units))]
    for result in compiled:
        if isinstance(result, tuple):
            index, log = result
            raise UnitFailed(f"compile unit {index} of a linked program failed on "
                             f"{device.describe()}:\n{log}", index)
    try:
        head = raw._Program(device.context, main)
        head.compile(b"", [device.cl_device])
        program = raw._Program.link(device.context, [*compiled, head], b"", [device.cl_device])
    except cl.Error as err:
        raise DeviceError(
            f"linking {len(units)} kernels into one launch failed on {device.describe()}:\n"
            f"{_build_log(err)}",
            hint="report this with the log",
        ) from None
    programs.records.append(BuildRecord("<chain>", ("link",), time.perf_counter() - start,
                                        False))
    if device.binaries:
        store_program(program, path)
    return program
