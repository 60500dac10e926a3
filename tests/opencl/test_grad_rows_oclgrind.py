"""conv2d_grad_rows.cl under Oclgrind (see test_oclgrind.py): every access checked, data races
detected (its work-groups' rows taken together), on three of test_grad_rows.py's layers with a
CPU's blocks and, within a small GPU's limits, the device's own tiling
(grad_rows_oclgrind_driver.py)."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401

DRIVER = Path(__file__).with_name("grad_rows_oclgrind_driver.py")
RUNS = 7  # the driver's variants: 3 on the stem (unit steps), 2 each on the strided and dilated ones


def test_grad_rows_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    assert "REFUSED" not in out and out.count(": ok") == RUNS, out
    for label in ("default", "taps-3-sync", "tap-vectors"):
        assert f" {label}: ok" in out, out


def test_grad_rows_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """The device's own tiling (Oclgrind: a GPU's) under a small GPU's limits: 64 work-items
    per group, 4 KiB of local memory, one compute unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    out = run_clean(DRIVER, env, "--native")
    assert "REFUSED" not in out and out.count(": ok") == 3, out
