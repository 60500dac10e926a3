"""Every environment variable cnnc reads, read here and nowhere else.

CNNC_DATA        a folder holding dataset IDX files (searched before the user cache)
CNNC_CACHE_DIR   where datasets and compiled kernels are cached (default ~/.cache/cnnc)
CNNC_VERDICT_DIR where OpenCL driver qualifications are remembered (default: the cache's
                 opencl-drivers folder; the test suite points every process at one)
CNNC_QUALIFY_TIMEOUT  seconds a driver's qualification may take before it counts as hung
CNNC_DEVICE      default OpenCL device selector ('gpu', 'cpu', 'P:D' or part of a name)
CNNC_DEBUG       '1' verifies the graph after every pass and names the pass that broke it
CNNC_OFFLINE     '1' never downloads datasets (the test suite and CI set it)
CNNC_TUNE        '0' turns kernel tuning off: the device's default kernel variants only, no
                 tuning cache read or written (the test suite sets it; cnnc/tune/)
CNNC_LATENCY_DEVICE  '0' keeps small forward passes on the device itself, off pocl's one-thread
                 companion device (cnnc/backends/opencl/latency.py; the test suite sets it
                 but for the latency path's own tests)
CNNC_CHAINS      '0' runs every launch of a small forward pass on a CPU device as a launch of
                 its own, not in chains (cnnc/backends/opencl/chain.py; the test suite sets it
                 but for the chains' own tests)

Set by others and read here too:
PMI_SIZE, OMPI_COMM_WORLD_SIZE, MV2_COMM_WORLD_SIZE, PMIX_RANK with SLURM_STEP_NUM_TASKS
                 the process count of an MPI launcher (mpiexec, srun): `cnnc run` trains
                 data-parallel when it is above 1 (cnnc/distributed)
POCL_MAX_PTHREAD_COUNT  pocl's worker threads per process: set, when unset, to share a node's
                 cores between the ranks on it
POCL_DEVICES     pocl's devices: set to 'pthread basic', when unset, so that pocl's one-thread
                 'basic' device is there beside its CPU device for the latency path
POCL_AFFINITY    pocl's CPU device pins its worker thread i to core i when it is 1: set to 1,
                 when unset, where the process has every core to itself (pin_cpu_threads)
OCL_ICD_VENDORS, LD_LIBRARY_PATH   read (not set) by `cnnc doctor`, to report the OpenCL drivers
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path | None:
    value = os.environ.get("CNNC_DATA")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    value = os.environ.get("CNNC_CACHE_DIR")
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "cnnc"


def verdict_dir() -> Path:
    value = os.environ.get("CNNC_VERDICT_DIR")
    return Path(value).expanduser() if value else cache_dir() / "opencl-drivers"


QUALIFY_TIMEOUT = 600.0  # a first qualification builds ~60 programs: ~20 s on an idle 2-core CPU


def qualify_timeout() -> float:
    value = os.environ.get("CNNC_QUALIFY_TIMEOUT", "")
    try:
        seconds = float(value)
    except ValueError:
        return QUALIFY_TIMEOUT
    return seconds if seconds > 0 else QUALIFY_TIMEOUT


def device_selector() -> str | None:
    return os.environ.get("CNNC_DEVICE") or None


def _flag(name: str) -> bool:
    """A yes/no variable: set to anything but '', 0, false or no means yes."""
    return os.environ.get(name, "") not in ("", "0", "false", "no")


def debug() -> bool:
    return _flag("CNNC_DEBUG")


def tune() -> bool:
    """False when CNNC_TUNE says no ('0', 'false', 'no', 'off'); unset means yes."""
    return os.environ.get("CNNC_TUNE", "1").strip().lower() not in ("0", "false", "no", "off")


def offline() -> bool:
    """True when datasets must not be downloaded."""
    return _flag("CNNC_OFFLINE")


# Variables through which MPI launchers tell a process how many they started.
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launcher_ranks() -> int | None:
    """How many processes an MPI launcher started with this one, or None outside a launcher."""
    names = LAUNCHER_SIZE_VARIABLES
    if os.environ.get("PMIX_RANK") is not None:  # srun --mpi=pmix names no size of its own
        names += ("SLURM_STEP_NUM_TASKS",)
    for name in names:
        value = os.environ.get(name, "")
        if value.strip().isdigit():
            return int(value)
    return None


def share_cpu_threads(ranks_here: int) -> None:
    """Give pocl's CPU device cores // ranks_here threads per process (when not set by the user),
    so that ranks sharing a node do not each start a thread per core. Call before OpenCL starts."""
    if ranks_here > 1 and not os.environ.get("POCL_MAX_PTHREAD_COUNT"):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        os.environ["POCL_MAX_PTHREAD_COUNT"] = str(max(1, cores // ranks_here))


def pin_cpu_threads() -> None:
    """POCL_AFFINITY=1 where the user set neither it nor POCL_MAX_PTHREAD_COUNT and this process
    may run on every core: pocl's CPU device then pins its worker thread i to core i. Call
    before OpenCL starts (pocl reads it once). Unpinned, Linux woke both workers on the core
    that woke them, and a launch's work-groups ran one after another until the load balancer
    moved a worker: on a 2-core Intel Xeon VM (pocl 3.1) two work-groups of 140 us each took
    286 us unpinned and 142 us pinned; idle, whole passes ran 1.2-1.8x faster pinned
    (shufflenet_mini, mobilenetv3_mini, resnet_mini forward at batch 256; the seed model at
    batch 1), the seed model's training as fast, the smallest networks' batch-1 passes of a few
    microseconds a launch 0.8-0.9x. Not where ranks share the cores (share_cpu_threads: each
    rank's thread 0 would be pinned to core 0) or the process is confined to some of them."""
    if "POCL_AFFINITY" in os.environ or os.environ.get("POCL_MAX_PTHREAD_COUNT"):
        return
    if not hasattr(os, "sched_getaffinity"):
        return
    if os.sched_getaffinity(0) != set(range(os.cpu_count() or 0)):
        return
    os.environ["POCL_AFFINITY"] = "1"


def latency_device() -> bool:
    """False when CNNC_LATENCY_DEVICE says no; unset means yes."""
    return os.environ.get("CNNC_LATENCY_DEVICE", "1").strip().lower() not in (
        "0", "false", "no", "off")


def chains() -> bool:
    """False when CNNC_CHAINS says no; unset means yes."""
    return os.environ.get("CNNC_CHAINS", "1").strip().lower() not in (
        "0", "false", "no", "off")


# What add_basic_device set POCL_DEVICES to: the 'basic' devices it adds are the CPU devices'
# companions, not devices of their own to list or choose.
ADDED_POCL_DEVICES = "pthread basic"


def add_basic_device() -> bool:
    """POCL_DEVICES='pthread basic' where the user has not set it: pocl then offers, beside its
    CPU device, the 'basic' device that runs each launch in the thread that waits for it
    (latency.py). Call before OpenCL starts (pocl reads it once).
    True when the basic devices found are cnnc's addition."""
    if os.environ.get("POCL_DEVICES") == ADDED_POCL_DEVICES:
        return True  # set by this process before, or inherited from the cnnc that started it
    if "POCL_DEVICES" in os.environ:
        return False
    os.environ["POCL_DEVICES"] = ADDED_POCL_DEVICES
    return True


def icd_vendors() -> str | None:
    """OCL_ICD_VENDORS: where the OpenCL ICD loader looks for vendor files (for `cnnc doctor`;
    the loader itself reads it)."""
    return os.environ.get("OCL_ICD_VENDORS") or None


def library_path() -> list[str]:
    """The folders of LD_LIBRARY_PATH (for `cnnc doctor`'s check of OpenCL drivers)."""
    return [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
