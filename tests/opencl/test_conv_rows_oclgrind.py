"""conv2d_rows.cl under Oclgrind (see test_oclgrind.py): every access checked, data races
detected, on test_conv_rows.py's layers, a residual and a gated input, with a CPU's blocks
(four variants, pixel vectors among them) and, within a small GPU's limits, the device's own tiling
(conv_rows_oclgrind_driver.py)."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401

DRIVER = Path(__file__).with_name("conv_rows_oclgrind_driver.py")
RUNS = 9  # the driver's graphs: test_conv_rows.LAYERS's 7, a residual, a gated input


def test_conv_rows_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    assert "MISMATCH" not in out and out.count(": ok") == 4 * RUNS, out
    for label in ("rows", "rows-one-block-groups", "rows-2x1", "rows-pixels"):
        assert f" {label} [(" in out, out


def test_conv_rows_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """The device's own tiling (Oclgrind: a GPU's) under a small GPU's limits: 64 work-items
    per group, 4 KiB of local memory, one compute unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    out = run_clean(DRIVER, env, "--native")
    assert "MISMATCH" not in out and out.count(": ok") == RUNS, out
