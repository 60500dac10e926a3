"""The kernels under Oclgrind, an OpenCL simulator that checks every memory access.

Runs tests/opencl/oclgrind_driver.py in a subprocess whose ICD loader sees Oclgrind (a folder
holding `oclgrind.icd` and OCL_ICD_VENDORS pointing at it, see NOTES.md; CNNC_DEVICE picks it),
with data-race detection on, every tensor in its own allocation, on tiny shapes. The whole kernel
set runs with a CPU's tiling and a GPU's; then the tiled kernels run with the work-group shapes
cnnc chooses for GPU-like limits (Oclgrind's OCLGRIND_MAX_WGSIZE, OCLGRIND_LOCAL_MEM_SIZE and
OCLGRIND_COMPUTE_UNITS), where a fixed 16 x 16 work-group used to fail with
CL_INVALID_WORK_GROUP_SIZE. Oclgrind reports problems on stderr and carries on, so a test fails
on any stderr output. (Its --uninitialized checker aborts on LLVM's `freeze` instruction, which
pocl-era clang emits, so it is not used.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

OCLGRIND = Path("/usr/bin/oclgrind")
ICD_LIBRARY = Path("/usr/lib/oclgrind/liboclgrind-rt-icd.so")
DRIVER = Path(__file__).with_name("oclgrind_driver.py")

pytestmark = pytest.mark.skipif(
    not (OCLGRIND.exists() and ICD_LIBRARY.exists()),
    reason="oclgrind is not installed (apt-get install oclgrind)",
)


@pytest.fixture(scope="module")
def oclgrind_env(tmp_path_factory):
    """The environment of a process that sees Oclgrind and picks it (one kernel cache for the
    module's runs)."""
    folder = tmp_path_factory.mktemp("oclgrind")
    icd = folder / "icd"
    icd.mkdir()
    (icd / "oclgrind.icd").write_text(f"{ICD_LIBRARY}\n")
    env = {
        **os.environ,
        "OCL_ICD_VENDORS": str(icd),
        "CNNC_DEVICE": "oclgrind",
        "OCLGRIND_DATA_RACES": "1",
        "PYTHONWARNINGS": "ignore",
        "CNNC_CACHE_DIR": str(folder / "cache"),
    }
    devices = subprocess.run(
        [sys.executable, "-m", "cnnc.cli", "devices"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert "Oclgrind" in devices, "the subprocess does not see the Oclgrind device"
    return env


def run_clean(driver: Path, env: dict[str, str], *args: str) -> str:
    """Run a driver script under Oclgrind (env from `oclgrind_env`); its standard output, after
    checking that Oclgrind reported nothing and the driver found no mismatch."""
    return _run_driver(env, *args, driver=driver).stdout


def _run_driver(env: dict[str, str], *args: str, driver: Path = DRIVER
                ) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, str(driver), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert run.stderr.strip() == "", f"Oclgrind reported problems:\n{run.stderr[:6000]}"
    assert run.returncode == 0, run.stdout
    return run


def cuts(default: str, other: str):
    """Run a driver's `default` cut in the default suite and its `other` under -m slow
    (oclgrind_cuts.py): Oclgrind simulates every work-item, and these drivers were a third of
    the suite's time. The cut each test leaves to -m slow is the one another default test
    already covers."""
    return pytest.mark.parametrize("cut", [default, pytest.param(other, marks=pytest.mark.slow)])


def with_cut(env: dict[str, str], cut: str) -> dict[str, str]:
    return {**env, "OCLGRIND_CUTS": cut}


# The GPU's cut (local-memory tiles and barriers, where races and stray accesses hide) by
# default; every case's CPU cut also runs on the real device in test_ops.py.
@cuts("gpu", "cpu")
def test_every_kernel_is_clean_under_oclgrind(oclgrind_env, cut):
    run = _run_driver(with_cut(oclgrind_env, cut))
    assert run.stdout.count(": ok") >= 2 * 20


# (OCLGRIND_MAX_WGSIZE, OCLGRIND_LOCAL_MEM_SIZE, OCLGRIND_COMPUTE_UNITS) of GPU-like devices,
# and the work-group of the tiled kernels each must get: the largest 16 x 16, 16 x 8 or 8 x 8
# tile within the limits.
GPU_LIMITS = [(128, 16 * 1024, 2, 128), (256, 48 * 1024, 4, 256), (64, 4 * 1024, 1, 64)]


@pytest.mark.parametrize(
    "max_group,local_memory,compute_units,group",
    GPU_LIMITS,
    ids=[f"wg{g}-local{m // 1024}k-cu{c}" for g, m, c, _ in GPU_LIMITS],
)
def test_tiled_kernels_within_gpu_like_limits(
    oclgrind_env, max_group, local_memory, compute_units, group
):
    env = {
        **oclgrind_env,
        "OCLGRIND_MAX_WGSIZE": str(max_group),
        "OCLGRIND_LOCAL_MEM_SIZE": str(local_memory),
        "OCLGRIND_COMPUTE_UNITS": str(compute_units),
    }
    run = _run_driver(env, "--native", "tiled")
    lines = run.stdout.splitlines()
    assert len(lines) == 2 and all(": ok" in line for line in lines), run.stdout
    groups = {tuple(map(int, g)) for g in re.findall(r"\((\d+), (\d+)\)", run.stdout)}
    assert (group, 1) in groups, run.stdout  # the tiled kernels' work-group
    assert all(a * b <= max_group for a, b in groups), run.stdout
