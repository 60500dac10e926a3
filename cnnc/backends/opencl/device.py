"""OpenCL device discovery and selection: the first stage of the OpenCL backend.

Every platform and device is listed; a device counts as usable only once its driver has
qualified (qualification.py: cnnc's own kernels built and run in a child process, once per
driver, device and kernel sources, remembered), because a driver can list a device it cannot
compile for (pip's pocl 3.0 on a Zen 5 CPU: "unknown target CPU 'generic'"), pass a probe kernel
and then crash on real ones (the same pocl on a Zen 4), and an OpenCL C 1.1 device (Mesa's
Clover) builds a trivial kernel but none of cnnc's. Selection takes
'gpu', 'cpu', 'P:D' (platform:device index) or part of a device name; the default is the first
usable GPU, then the first usable CPU, then anything else (a simulator such as Oclgrind, which
reports itself as every type of device at once, is never taken for a GPU).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from cnnc import settings
from cnnc.backends.opencl.target import Limits
from cnnc.errors import DeviceError

# What the probe kernel exercises, because cnnc's kernels rely on it: OpenCL C 1.2 (`static`
# helper functions), restrict pointers, local memory with a barrier and an explicit work-group,
# vector loads and stores, select(), -D defines and -cl-mad-enable.
PROBE_SOURCE = """
static float4 scaled(float4 v, float s) { return v * s + (float4)(0.0f); }

__kernel void probe(__global const float *restrict x, __global float *restrict y)
{
    __local float staged[PROBE_GROUP * 4];
    const int i = get_global_id(0), l = get_local_id(0);
    vstore4(vload4(i, x), l, staged);
    barrier(CLK_LOCAL_MEM_FENCE);
    const float4 v = vload4(PROBE_GROUP - 1 - l, staged); /* the group's float4s reversed */
    vstore4(select(scaled(v, 2.0f), v, v < (float4)(0.0f)), i, y);
}
"""
PROBE_GROUP = 4
PROBE_OPTIONS = f"-cl-mad-enable -DPROBE_GROUP={PROBE_GROUP}"
MIN_OPENCL_C = (1, 2)

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
    verdict: Any = field(default=None, repr=False)  # its qualification.Verdict, once probed

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
        """'gpu', 'cpu', 'accelerator', 'simulator' or 'other'.

        A device that reports more than one of GPU, CPU and accelerator at once (Oclgrind
        reports all of them) is a simulator: slow, for checking, and never the default GPU."""
        cl = _cl()
        t = self.cl_device.type
        kinds = [
            name
            for name, bit in (
                ("gpu", cl.device_type.GPU),
                ("cpu", cl.device_type.CPU),
                ("accelerator", cl.device_type.ACCELERATOR),
            )
            if t & bit
        ]
        if len(kinds) > 1 or "oclgrind" in self.name.lower():
            return "simulator"
        return kinds[0] if kinds else "other"

    @cached_property
    def compute_units(self) -> int:
        return int(self.cl_device.max_compute_units)

    @cached_property
    def native_vector_width(self) -> int:
        """CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT: floats in one SIMD register (0 if not said)."""
        try:
            return int(self.cl_device.native_vector_width_float)
        except (AttributeError, _cl().Error):
            return 0

    @cached_property
    def global_memory(self) -> int:
        return int(self.cl_device.global_mem_size)

    @cached_property
    def max_allocation(self) -> int:
        return int(self.cl_device.max_mem_alloc_size)

    @cached_property
    def limits(self) -> Limits:
        """What launches and buffers on this device must stay within (target.py)."""
        cl = _cl()
        d = self.cl_device
        sizes = [int(n) for n in d.max_work_item_sizes][:3]
        sizes += [1] * (3 - len(sizes))
        local_is_global = int(d.local_mem_type) == int(cl.device_local_mem_type.GLOBAL)
        return Limits(
            max_group=int(d.max_work_group_size),
            max_item_sizes=(sizes[0], sizes[1], sizes[2]),
            local_memory=int(d.local_mem_size),
            max_allocation=int(d.max_mem_alloc_size),
            global_memory=int(d.global_mem_size),
            local_is_global=local_is_global,
        )

    @cached_property
    def opencl_c_version(self) -> tuple[int, int] | None:
        """The OpenCL C version the device compiles, (1, 2) for 'OpenCL C 1.2 ...'; None when
        it does not say (an OpenCL 1.0 device)."""
        try:
            text = str(self.cl_device.opencl_c_version)
        except (AttributeError, _cl().Error):  # an OpenCL 1.0 device (or a fake) lacks it
            return None
        m = re.search(r"OpenCL C (\d+)\.(\d+)", text)
        return (int(m.group(1)), int(m.group(2))) if m else None

    @cached_property
    def fp16(self) -> bool:
        return "cl_khr_fp16" in self.cl_device.extensions

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

    def trust(self) -> None:
        """Take the device as usable without qualifying it: for the process that qualifies it
        (cnnc/qualify.py)."""
        self._usable, self._reason = True, None

    def probe(self, fresh: bool = False) -> None:
        """Decide once per process whether the device is usable, and why not: from its OpenCL C
        version, then its driver's qualification (qualification.py: remembered, or run now in a
        child process; fresh: run now whatever is remembered). A simulator runs the probe kernel
        only, in this process."""
        if self._usable is not None and not fresh:
            return
        version = self.opencl_c_version
        if version is not None and version < MIN_OPENCL_C:
            self._usable = False
            self._reason = (
                f"the device compiles OpenCL C {version[0]}.{version[1]}; cnnc's kernels need "
                f"OpenCL C {MIN_OPENCL_C[0]}.{MIN_OPENCL_C[1]} or newer (static functions)"
            )
            return
        if self.kind == "simulator":
            cl = _cl()
            try:
                probe_kernel(self)
                self._usable, self._reason = True, None
            except (cl.Error, DeviceError) as err:
                self._usable, self._reason = False, first_error_line(err)
            return
        from cnnc.backends.opencl import qualification

        verdict = qualification.qualify(self.index, self.name, self.identity, fresh=fresh)
        self.verdict = verdict
        self._usable, self._reason = verdict.usable, verdict.reason

    @cached_property
    def identity(self) -> str:
        """What a qualification and a program binary are valid for (binary_cache.py)."""
        from cnnc.backends.opencl.binary_cache import device_identity

        return device_identity(self.cl_device)

    @property
    def binaries(self) -> bool:
        """Whether built programs may be kept on disk: not where the driver's qualification
        found that retrieving or reloading binaries fails."""
        self.probe()
        return self.verdict is None or self.verdict.binaries

    @property
    def fix(self) -> str:
        """What to do about this device when it is not usable."""
        from cnnc.backends.opencl.qualification import fix_for

        return fix_for(self.kind)

    @property
    def usable(self) -> bool:
        self.probe()
        return bool(self._usable)

    @property
    def reason(self) -> str | None:
        """Why the device is not usable (None when it is)."""
        self.probe()
        return self._reason


def probe_kernel(device: Device) -> None:
    """Build and run the probe kernel on `device`; raises cl.Error or DeviceError if it fails
    or computes something else."""
    cl = _cl()
    ctx = device.context
    # No disk cache (pyopencl's takes a lock a killed process can leave behind) and no generated
    # invoker: a plain build and launch.
    program = cl.Program(ctx, PROBE_SOURCE).build(options=PROBE_OPTIONS, cache_dir=False)
    queue = cl.CommandQueue(ctx)
    n = 2 * PROBE_GROUP
    host = np.arange(-4 * n // 2, 4 * n // 2, dtype=np.float32)
    flags = cl.mem_flags
    src = cl.Buffer(ctx, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=host)
    dst = cl.Buffer(ctx, flags.WRITE_ONLY, host.nbytes)
    kernel = cl.Kernel(program, "probe")
    kernel.set_arg(0, src)
    kernel.set_arg(1, dst)
    cl.enqueue_nd_range_kernel(queue, kernel, (n,), (PROBE_GROUP,))
    out = np.empty_like(host)
    cl.enqueue_copy(queue, out, dst)
    queue.finish()
    # Each group reverses its float4s through local memory; positives are doubled.
    want = host.reshape(-1, PROBE_GROUP, 4)[:, ::-1].reshape(-1)
    want = np.where(want < 0, want, 2 * want)
    if not np.array_equal(out, want):
        raise DeviceError(
            f"a test kernel computed {out[:8].tolist()}... instead of {want[:8].tolist()}"
        )


def first_error_line(err: Exception) -> str:
    """The telling line of a driver's build log ('error: unknown target CPU ...'), or of an
    error's message."""
    text = str(getattr(err, "message", None) or err)
    for line in text.splitlines():
        if re.search(r"\berror\b", line, re.IGNORECASE) and "clBuildProgram" not in line:
            return line.strip()[:300]
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return first[:300]


_DEVICES: list[Device] | None = None
# pocl's one-thread 'basic' devices that settings.add_basic_device asked for: not listed, the
# companions of the CPU devices beside them (companion_of).
_COMPANIONS: list[Device] = []
# The name prefixes of pocl's CPU device and of its one-thread device: 'pthread-' and 'basic-'
# in pocl 3, 'cpu-' and 'cpu-minimal-' where later versions renamed them (they still take
# the old names in POCL_DEVICES).
COMPANION_PREFIXES = {"pthread-": "basic-", "cpu-": "cpu-minimal-"}


def _is_companion(name: str) -> bool:
    return name.startswith(tuple(COMPANION_PREFIXES.values()))


def devices() -> list[Device]:
    """Every device of every platform, in platform then device order (not probed yet)."""
    global _DEVICES
    if _DEVICES is None:
        settings.pin_cpu_threads()
        added = settings.add_basic_device()
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
            # pocl lists its 'basic' device first: the listed devices keep the indices they
            # have without it (the CPU device stays 0:0), a companion goes after them.
            listed = [d for d in cl_devices if not (added and _is_companion(d.name.strip()))]
            for d_index, cl_device in enumerate(listed):
                found.append(Device(p_index, d_index, cl_device))
            for d_index, cl_device in enumerate(
                    (d for d in cl_devices if d not in listed), start=len(listed)):
                _COMPANIONS.append(Device(p_index, d_index, cl_device))
        _DEVICES = found
    return _DEVICES


def companion_of(device: Device) -> Device | None:
    """pocl's 'basic' device beside `device` (the same CPU, pocl's 'pthread-' device; in later
    pocl versions 'cpu-minimal-' beside 'cpu-'): one that runs each launch's work-groups one
    after another in the thread that waits for them, so a launch costs no wake-up of a worker
    and no return to the host (latency.py). Its kernels are compiled by the same pocl and LLVM
    as the CPU device's, so it takes that device's qualification rather than one of its own.
    None where there is none."""
    devices()
    name = device.name
    prefix = next((p for p in COMPANION_PREFIXES if name.startswith(p)), None)
    if device.kind != "cpu" or prefix is None or _is_companion(name):
        return None
    want = COMPANION_PREFIXES[prefix] + name.removeprefix(prefix)
    for other in _COMPANIONS:
        if other.platform_index == device.platform_index and other.name == want:
            if other._usable is None:
                usable = device.usable  # (qualifies the device where that is still to do)
                other.verdict = device.verdict
                other._usable, other._reason = usable, device.reason
            return other
    return None


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
    raise DeviceError(f"no OpenCL device can run cnnc's kernels ({listed})",
                      hint=NO_PLATFORM_HINT)


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
    why = "; ".join(f"{d.describe()} is unusable: {d.reason}" for d in matches)
    others = [d for d in found if d not in matches and d.usable]
    hint = matches[0].fix + (f"; or pick another device, e.g. --device {others[0].index}"
                             if others else "")
    raise DeviceError(f"OpenCL device '{selector}' is not usable ({why})", hint=hint)


def _matching(found: list[Device], selector: str) -> list[Device]:
    low = selector.lower()
    if low in ("gpu", "cpu", "accelerator", "simulator"):
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
