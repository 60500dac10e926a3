"""conv2d_forward's runs of taps (conv2d.cl, TAP_RUNS) under Oclgrind (see test_oclgrind.py):
every access checked, so a run that read a row's pixels past the map's edge, or more zeros
than the binding allocates, fails here."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401  (fixture, mark)

DRIVER = Path(__file__).with_name("tap_runs_oclgrind_driver.py")


def test_tap_runs_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    """A CPU's float16-wide blocks of 8 and 3 rows on five odd layers."""
    out = run_clean(DRIVER, oclgrind_env)
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 10 and all(x.endswith(": ok") for x in lines), out


def test_tap_runs_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """The device's own tiling (Oclgrind: a GPU's) with its local tiles off, under a small
    GPU's limits: 64 work-items per group, 4 KiB of local memory, one compute unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    out = run_clean(DRIVER, env, "--native")
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 5 and all(x.endswith(": ok") for x in lines), out
    assert all("2x" in x for x in lines), out
