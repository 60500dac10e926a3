"""The device as the binders see it (`Target`), its `Limits`, and the check that a tensor fits.

A leaf of the OpenCL backend: it imports nothing of the backend, so tiling.py, launches.py, the
binders and the runtime all build on it. The binders (through tiling.py) choose work-group
shapes, local-memory tiles and grid layouts within `Limits`; `check_launch` (launches.py) and
`check_tensor` are the plan's last line of defence, so a launch the device would refuse
(CL_INVALID_WORK_GROUP_SIZE), a grid some driver cannot run, or a tensor the kernels' 32-bit
indices would wrap on becomes a clear error before anything runs. Nothing here touches OpenCL:
`Device.limits` (device.py) reads the real values, tests make their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import prod

from cnnc.errors import DeviceError

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


@dataclass(frozen=True)
class Target:
    """What the bindings need to know about the device to choose tile sizes."""

    kind: str = "cpu"  # 'cpu' | 'gpu' | ...
    compute_units: int = 1
    limits: Limits = field(default_factory=Limits)
    # True: a GPU's local tiles wherever they fit, even where local memory is global memory
    # (tests run the GPU code paths on every device this way); None: where they pay.
    force_local_tiles: bool | None = None
    # CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT (0: not known, as in tests that build a Target by
    # hand): a CPU's SIMD register in floats, 8 on AVX2, 16 on AVX-512.
    native_vector: int = 0

    @property
    def max_vector(self) -> int:
        # CPUs: one register block row maps onto the SIMD registers; wider vectors compile to
        # several registers each. Unknown width: float16 (AVX-512). GPUs: a work-item is one
        # lane; narrow vectors keep registers free.
        if self.kind != "cpu":
            return 4
        return min(self.native_vector, 16) if self.native_vector >= 4 else 16

    @property
    def vector_registers(self) -> int:
        """SIMD registers a CPU's work-item may fill with accumulators and operands: AVX-512
        has 32, AVX2 (and narrower) 16. A register block past this spills: measured on a Zen 1
        (AVX2), the fashion training step ran 25% slower with 8x16x2 blocks than with 4x8x2."""
        return 32 if self.native_vector >= 16 or self.native_vector == 0 else 16

    @property
    def rows_per_item(self) -> int:
        return 8 if self.kind == "cpu" else 4

    @property
    def min_items(self) -> int:
        """Work-items a reduction-heavy kernel should offer before it is split."""
        return 4 * self.compute_units if self.kind == "cpu" else 64 * self.compute_units

    @property
    def cache_bytes(self) -> int:
        """What one part of a split reduction may read (CPU: about one core's L2)."""
        return 1 << 20

    @property
    def local_tiling(self) -> bool:
        """Local-memory tiling (tile.h) for GEMM-like kernels: GPUs only; on a CPU device the
        copies and barriers cost more than they save (benchmarks/README.md), and so they do
        where the device's local memory is global memory (CL_DEVICE_LOCAL_MEM_TYPE GLOBAL)."""
        return self.kind == "gpu" and bool(
            self.force_local_tiles or not self.limits.local_is_global
        )


def describe_size(nbytes: int) -> str:
    """Bytes in the unit a reader wants: '1.5 GiB', '320.0 MiB', '12.0 KiB'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:,.1f} {unit}"
    return f"{nbytes} bytes"


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
