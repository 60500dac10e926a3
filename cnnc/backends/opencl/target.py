"""A device's limits, and the checks that every planned launch and tensor respects them.

The binders (through tiling.py) choose work-group shapes, local-memory tiles and grid layouts
within `Limits`; `check_launch` and `check_tensor` are the plan's last line of defence, so a
launch the device would refuse (CL_INVALID_WORK_GROUP_SIZE), a grid some driver cannot run, or a
tensor the kernels' 32-bit indices would wrap on becomes a clear error before anything runs.
Nothing here touches OpenCL: `Device.limits` (device.py) reads the real values, tests make
their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod
from typing import TYPE_CHECKING

from cnnc.errors import DeviceError, InternalError
from cnnc.intmath import ceil_div

if TYPE_CHECKING:  # launches.py imports tiling.py, which imports this module
    from cnnc.backends.opencl.launches import Launch

# The kernels index tensors and work-items with `int`: no tensor may hold more elements, and
# no launch dimension more work-items.
INDEX_MAX = 2**31 - 1

# Work-groups per launch dimension. CUDA-based OpenCL drivers (NVIDIA's) map the grid onto a
# CUDA grid whose y and z sizes are at most 65,535, and OpenCL has no query for it: the binders
# put the large counts (row tiles, elements) in dimension 0 and keep dimensions 1 and 2 within
# this on every device, so a plan made on one device runs on any.
GRID_GROUPS = (INDEX_MAX, 65535, 65535)

UNLIMITED = 2**62  # a limit the device did not state (plans made without a device)


@dataclass(frozen=True)
class Limits:
    """What a device allows; the defaults are 'no limit known' (plans made without a device).

    max_group: CL_DEVICE_MAX_WORK_GROUP_SIZE, lowered to the smallest CL_KERNEL_WORK_GROUP_SIZE
    of a kernel launched with an explicit work-group once the runtime has seen one that allows
    fewer (a kernel that needs many registers can). max_item_sizes: CL_DEVICE_MAX_WORK_ITEM_SIZES.
    local_memory: bytes of CL_DEVICE_LOCAL_MEM_SIZE that local tiles may use (lowered when a
    kernel turns out to need some of its own). local_is_global: CL_DEVICE_LOCAL_MEM_TYPE is
    GLOBAL, local memory emulated in global memory (pocl): tiling there only adds copies.
    max_allocation: CL_DEVICE_MAX_MEM_ALLOC_SIZE, the largest single buffer.
    """

    max_group: int = UNLIMITED
    max_item_sizes: tuple[int, int, int] = (UNLIMITED, UNLIMITED, UNLIMITED)
    local_memory: int = UNLIMITED
    max_allocation: int = UNLIMITED
    global_memory: int = UNLIMITED
    local_is_global: bool = False

    def tighter(self, other: Limits) -> Limits:
        """The smaller of each limit of the two (a test's limits on a real device's)."""
        return Limits(
            min(self.max_group, other.max_group),
            tuple(min(a, b) for a, b in zip(self.max_item_sizes, other.max_item_sizes)),
            min(self.local_memory, other.local_memory),
            min(self.max_allocation, other.max_allocation),
            min(self.global_memory, other.global_memory),
            self.local_is_global or other.local_is_global,
        )

    def with_group_limit(self, group: int) -> Limits:
        return replace(self, max_group=min(self.max_group, group))

    def with_local_memory(self, nbytes: int) -> Limits:
        return replace(self, local_memory=max(0, min(self.local_memory, nbytes)))

    def group_fits(self, local: tuple[int, ...]) -> bool:
        """Whether a work-group of this shape is within the device's limits."""
        return prod(local) <= self.max_group and all(
            n <= m for n, m in zip(local, self.max_item_sizes)
        )


def describe_size(nbytes: int) -> str:
    """Bytes in the unit a reader wants: '1.5 GiB', '320.0 MiB', '12.0 KiB'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:,.1f} {unit}"
    return f"{nbytes} bytes"


def check_launch(node: str, launch: Launch, limits: Limits) -> None:
    """Raise if `launch` (a launches.Launch of `node`) is outside what the device or the kernels'
    int indices allow. The binders stay within these limits; this says so before a run."""
    where = f"node '{node}' ({launch.file}:{launch.kernel})"
    glob, local = launch.global_size, launch.local_size
    for d, n in enumerate(glob):
        if n > INDEX_MAX:
            raise DeviceError(
                f"{where} needs {n:,} work-items in launch dimension {d}, more than the "
                f"{INDEX_MAX:,} cnnc's kernels can index with 32-bit integers",
                hint="lower the batch size (--batch)",
            )
    if local is not None:
        if len(local) != len(glob) or any(g % k for g, k in zip(glob, local)):
            raise InternalError(f"{where}: work-group {local} does not divide the grid {glob}")
        if not limits.group_fits(local):
            raise InternalError(
                f"{where}: work-group {local} exceeds the device's limits (at most "
                f"{limits.max_group} work-items, {limits.max_item_sizes} per dimension)"
            )
    for d, n in enumerate(glob):
        # Without a work-group the driver chooses one: assume the smallest, one work-item.
        groups = ceil_div(n, local[d]) if local is not None else n
        if d > 0 and groups > GRID_GROUPS[d]:
            raise DeviceError(
                f"{where} needs {groups:,} work-groups in launch dimension {d}; some drivers "
                f"allow at most {GRID_GROUPS[d]:,} there",
                hint="this shape is beyond what cnnc's kernels can launch portably",
            )


def check_scalar(node: str, launch: Launch, value: int, unsigned: bool = False) -> None:
    """An integer kernel argument must fit its C type (int, or uint for unsigned)."""
    low, high = (0, 2**32 - 1) if unsigned else (-(2**31), INDEX_MAX)
    if not low <= value <= high:
        raise DeviceError(
            f"node '{node}' ({launch.file}:{launch.kernel}) would pass {value:,} to the kernel, "
            f"outside the range of a 32-bit {'uint' if unsigned else 'int'}",
            hint="lower the batch size (--batch)",
        )


def largest_batch(elements: int, nbytes: int, batch: int, limits: Limits) -> int:
    """The largest batch size at which a tensor that grows with the batch (`elements` and
    `nbytes` at `batch`) still fits the kernels' indices and one buffer."""
    per_item = max(elements // batch, 1)
    return min(INDEX_MAX // per_item, limits.max_allocation // max(nbytes // batch, 1))


def check_tensor(
    name: str,
    shape: tuple[int, ...],
    nbytes: int,
    limits: Limits,
    *,
    batch_that_fits: int | None = None,
) -> None:
    """A tensor must fit the kernels' int indices and one buffer of the device.

    batch_that_fits: the largest batch size at which every tensor of the plan fits, when this
    one grows with the batch (the hint then says to lower it)."""
    elements = prod(shape)
    shape_text = "x".join(str(s) for s in shape) or "scalar"
    hint = (
        f"lower the batch size to at most {batch_that_fits:,} (--batch)"
        if batch_that_fits
        else "make the layer smaller"
    )
    if elements > INDEX_MAX:
        raise DeviceError(
            f"tensor '{name}' ({shape_text}) has {elements:,} elements; cnnc's kernels index "
            f"tensors with 32-bit integers, at most {INDEX_MAX:,} elements",
            hint=hint,
        )
    if nbytes > limits.max_allocation:
        need, cap = describe_size(nbytes), describe_size(limits.max_allocation)
        if need == cap:  # too close to tell apart when rounded
            need, cap = f"{nbytes:,} bytes", f"{limits.max_allocation:,} bytes"
        raise DeviceError(
            f"tensor '{name}' ({shape_text}) needs {need} in one buffer, more than the {cap} "
            "the device allows per buffer",
            hint=hint,
        )
