"""conv2d_grad_rows.cl's TAP_DIRECT kernel under Oclgrind (see test_oclgrind.py): every access
checked, data races detected (its work-groups' rows taken together), on three of
test_grad_taps.py's layers with a CPU's blocks and, within a small GPU's limits, vectors of 4
(grad_taps_oclgrind_driver.py)."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401

DRIVER = Path(__file__).with_name("grad_taps_oclgrind_driver.py")


def test_grad_taps_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    assert "REFUSED" not in out and out.count(": ok") == 6, out
    for label in ("listed", "single-sync"):
        assert f" {label}: ok" in out, out


def test_grad_taps_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """Under a small GPU's limits: 64 work-items per group, 4 KiB of local memory, one compute
    unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    out = run_clean(DRIVER, env, "--native")
    assert "REFUSED" not in out and out.count(": ok") == 3, out
