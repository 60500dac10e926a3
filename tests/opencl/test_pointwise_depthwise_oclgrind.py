"""pointwise_depthwise.cl under Oclgrind (see test_oclgrind.py): every access checked, data
races detected, on test_pointwise_depthwise.py's blocks with a CPU's blocks and, within a small
GPU's limits, the device's own tiling (pointwise_depthwise_oclgrind_driver.py)."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401
from test_pointwise_depthwise import BLOCKS

DRIVER = Path(__file__).with_name("pointwise_depthwise_oclgrind_driver.py")


def test_pointwise_depthwise_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    assert "MISMATCH" not in out and out.count(": ok") == len(BLOCKS), out


def test_pointwise_depthwise_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """The device's own tiling (Oclgrind: a GPU's) under a small GPU's limits: 64 work-items
    per group, 4 KiB of local memory, one compute unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    out = run_clean(DRIVER, env, "--native")
    assert "MISMATCH" not in out and out.count(": ok") == len(BLOCKS), out
