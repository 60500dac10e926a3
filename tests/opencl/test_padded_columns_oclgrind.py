"""Convolutions with padded kernel columns (conv2d.cl -D FP) under Oclgrind (see
test_oclgrind.py): every access checked, so a block that read the kernel past its padded
columns, or stored, added a bias or a residual past the filters, fails here."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401  (fixture, mark)

DRIVER = Path(__file__).with_name("padded_columns_oclgrind_driver.py")


def test_padded_columns_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    """A CPU's float16 blocks (AVX-512's): padded to 96 (72 filters), 32 (24) and 128 (100)
    columns, a forced float16 block over 3 filters, and the depthwise + 1x1 row kernel's 24
    filters padded to 32."""
    out = run_clean(DRIVER, oclgrind_env)
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 5 and all(x.endswith(": ok") for x in lines), out
    assert all("x16x" in x and "padded" in x for x in lines), out


def test_padded_columns_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """The device's own tiling (Oclgrind: a GPU's) with a forced float4 block, under a small
    GPU's limits: 64 work-items per group, 4 KiB of local memory, one compute unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    out = run_clean(DRIVER, env, "--native")
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 4 and all(x.endswith(": ok") for x in lines), out
    assert all("2x4x2 padded" in x for x in lines), out
