"""The convolutions that pool as they store under Oclgrind (see test_oclgrind.py): every access
checked, data races detected, on test_conv_maxpool.py's maps with a CPU's blocks and, within a
small GPU's limits, the device's own tiling (conv_maxpool_oclgrind_driver.py)."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401

DRIVER = Path(__file__).with_name("conv_maxpool_oclgrind_driver.py")
RUNS = 15  # the driver's RUNS and AVG_RUNS


def test_conv_maxpool_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    assert "MISMATCH" not in out and out.count(": ok") == RUNS, out


def test_conv_maxpool_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """The device's own tiling (Oclgrind: a GPU's) under a small GPU's limits: 64 work-items
    per group, 4 KiB of local memory, one compute unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    out = run_clean(DRIVER, env, "--native")
    assert "MISMATCH" not in out and out.count(": ok") == RUNS, out
