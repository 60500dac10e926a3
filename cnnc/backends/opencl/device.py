"""OpenCL device discovery and selection: the first stage of the OpenCL backend.

Every platform and device is listed; a device counts as usable only once it has built and run a
tiny kernel (once per process), because a driver can list a device it cannot compile for (pip's
pocl 3.0 on a Zen 5 CPU: "unknown target CPU 'generic'"). Selection takes 'gpu', 'cpu', 'P:D'
(platform:device index) or part of a device name; the default is the first usable GPU, then the
first usable CPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from cnnc import settings
from cnnc.errors import DeviceError

PROBE_SOURCE = "__kernel void probe(__global float *x) { x[get_global_id(0)] += 1.0f; }"

NO_PLATFORM_HINT = (
    "install an OpenCL driver: `pip install 'cnnc[pocl]'` for a CPU driver, or on Debian/Ubuntu "
    "`apt-get install pocl-opencl-icd` (or your GPU vendor's OpenCL package)"
)


def _cl() -> Any:
    try:
        import pyopencl as cl
    except ImportError as err:  # a broken install, not a user mistake we can route around
        raise DeviceError(
            f"pyopencl cannot be imported ({err})", hint="reinstall cnnc with its dependencies"
        ) from None
    return cl


@dataclass
class Device:
    """One OpenCL device as found, with whether it can build and run kernels."""

    platform_index: int
    device_index: int
    cl_device: Any = field(repr=False)
    _usable: bool | None = field(default=None, repr=False)
    _reason: str | None = field(default=None, repr=False)
    _context: Any = field(default=None, repr=False)

    # ---------------------------------------------------------------- description

    @property
    def index(self) -> str:
        return f"{self.platform_index}:{self.device_index}"

    @cached_property
    def name(self) -> str:
        return self.cl_device.name.strip()

    @cached_property
    def platform_name(self) -> str:
        return self.cl_device.platform.name.strip()

    @cached_property
    def platform_version(self) -> str:
        return self.cl_device.platform.version.strip()

    @cached_property
    def kind(self) -> str:
        """'gpu', 'cpu', 'accelerator' or 'other'."""
        cl = _cl()
        t = self.cl_device.type
        if t & cl.device_type.GPU:
            return "gpu"
        if t & cl.device_type.CPU:
            return "cpu"
        if t & cl.device_type.ACCELERATOR:
            return "accelerator"
        return "other"

    @cached_property
    def compute_units(self) -> int:
        return int(self.cl_device.max_compute_units)

    @cached_property
    def global_memory(self) -> int:
        return int(self.cl_device.global_mem_size)

    @cached_property
    def max_allocation(self) -> int:
        return int(self.cl_device.max_mem_alloc_size)

    @cached_property
    def opencl_version(self) -> str:
        """'OpenCL 3.0' (the device's version string without the vendor's suffix)."""
        return " ".join(self.cl_device.version.split()[:2])

    @cached_property
    def platform_release(self) -> str:
        """The platform's version in short: 'OpenCL 3.0 PoCL 3.1+debian'."""
        return " ".join(self.platform_version.split()[:4])

    @cached_property
    def fp64(self) -> bool:
        if "cl_khr_fp64" in self.cl_device.extensions:
            return True
        try:  # OpenCL 3.0 devices may report doubles without the extension string
            return bool(self.cl_device.double_fp_config)
        except _cl().Error:
            return False

    @cached_property
    def base_alignment(self) -> int:
        """Bytes a sub-buffer's origin must be a multiple of."""
        return max(int(self.cl_device.mem_base_addr_align) // 8, 4)

    def describe(self) -> str:
        return (
            f"{self.index} '{self.name}' ({self.kind}, {self.platform_name}, "
            f"{self.platform_release})"
        )

    # ---------------------------------------------------------------- probing

    @property
    def context(self) -> Any:
        """The device's one OpenCL context in this process (created on first use)."""
        if self._context is None:
            cl = _cl()
            try:
                self._context = cl.Context([self.cl_device])
            except cl.Error as err:
                raise DeviceError(
                    f"cannot open OpenCL device {self.describe()}: {err}",
                    hint="pick another device with --device",
                ) from None
        return self._context

    def probe(self) -> None:
        """Build and run a one-line kernel; remember whether that worked and why not."""
        if self._usable is not None:
            return
        cl = _cl()
        try:
            ctx = self.context
            program = cl.Program(ctx, PROBE_SOURCE).build()
            queue = cl.CommandQueue(ctx)
            host = np.zeros(4, dtype=np.float32)
            buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=host)
            cl.Kernel(program, "probe")(queue, (4,), None, buf)
            cl.enqueue_copy(queue, host, buf)
            queue.finish()
            if not np.array_equal(host, np.ones(4, dtype=np.float32)):
                raise DeviceError(f"a test kernel computed {host.tolist()} instead of 1.0s")
            self._usable, self._reason = True, None
        except (cl.Error, DeviceError) as err:
            self._usable, self._reason = False, _first_error_line(err)

    @property
    def usable(self) -> bool:
        self.probe()
        return bool(self._usable)

    @property
    def reason(self) -> str | None:
        """Why the device is not usable (None when it is)."""
        self.probe()
        return self._reason


def _first_error_line(err: Exception) -> str:
    """The telling line of a driver's build log ('error: unknown target CPU ...')."""
    text = str(err)
    for line in text.splitlines():
        if re.search(r"\berror\b", line, re.IGNORECASE) and "clBuildProgram" not in line:
            return line.strip()
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return first[:200]


_DEVICES: list[Device] | None = None


def devices() -> list[Device]:
    """Every device of every platform, in platform then device order (not probed yet)."""
    global _DEVICES
    if _DEVICES is None:
        cl = _cl()
        found: list[Device] = []
        try:
            platforms = cl.get_platforms()
        except cl.Error:  # the ICD loader found no platform at all
            platforms = []
        for p_index, platform in enumerate(platforms):
            try:
                cl_devices = platform.get_devices()
            except cl.Error:  # a platform with no devices (or a broken driver)
                cl_devices = []
            for d_index, cl_device in enumerate(cl_devices):
                found.append(Device(p_index, d_index, cl_device))
        _DEVICES = found
    return _DEVICES


def _devices_or_error() -> list[Device]:
    """devices(), or a DeviceError saying how to get a driver when there are none."""
    found = devices()
    if not found:
        raise DeviceError("no OpenCL platform or device found", hint=NO_PLATFORM_HINT)
    return found


def default_device() -> Device:
    """The first usable GPU, else the first usable CPU, else any usable device."""
    found = _devices_or_error()
    for kind in ("gpu", "cpu", None):
        for d in found:
            if (kind is None or d.kind == kind) and d.usable:
                return d
    listed = "; ".join(f"{d.describe()}: {d.reason}" for d in found)
    raise DeviceError(f"no OpenCL device can build kernels ({listed})", hint=NO_PLATFORM_HINT)


def select_device(selector: str | None = None) -> Device:
    """The device a selector names: 'gpu', 'cpu', 'P:D', part of a name; None = the default.

    None falls back to the CNNC_DEVICE setting before the default. A selector that matches only
    unusable devices raises DeviceError saying why they cannot be used.
    """
    if selector is None:
        selector = settings.device_selector()
    if selector is None:
        return default_device()
    selector = selector.strip()
    found = _devices_or_error()
    matches = _matching(found, selector)
    if not matches:
        names = ", ".join(f"{d.index} '{d.name}'" for d in found)
        raise DeviceError(
            f"no OpenCL device matches '{selector}' (devices: {names})",
            hint="use 'gpu', 'cpu', an index such as 0:1, or part of a name; "
            "`cnnc devices` lists them",
        )
    for d in matches:
        if d.usable:
            return d
    why = "; ".join(f"{d.describe()} cannot build kernels: {d.reason}" for d in matches)
    others = [d for d in found if d not in matches and d.usable]
    hint = f"pick another device, e.g. --device {others[0].index}" if others else NO_PLATFORM_HINT
    raise DeviceError(f"OpenCL device '{selector}' is not usable ({why})", hint=hint)


def _matching(found: list[Device], selector: str) -> list[Device]:
    low = selector.lower()
    if low in ("gpu", "cpu", "accelerator"):
        return [d for d in found if d.kind == low]
    m = re.fullmatch(r"(\d+):(\d+)", selector)
    if m:
        p, d = int(m.group(1)), int(m.group(2))
        return [x for x in found if x.platform_index == p and x.device_index == d]
    return [
        d
        for d in found
        if any(low in text.lower() for text in (d.name, d.platform_name, d.platform_version))
    ]
