"""conv2d_forward's 1x1 path under Oclgrind (see test_oclgrind.py): every access checked, with a
CPU's register blocks (rows past the end, blocks across two examples), and with the device's own
tiling within GPU-like limits (work-groups of at most 128 work-items, 16 KiB of local
memory)."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import (  # noqa: F401  (fixture, mark)
    oclgrind_env,
    pytestmark,
    run_clean,
    with_cut,
)

DRIVER = Path(__file__).with_name("pointwise_rows_oclgrind_driver.py")


def test_1x1_path_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, with_cut(oclgrind_env, "cpu"))
    assert out.count(": ok") == 3, out


def test_1x1_path_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "128", "OCLGRIND_LOCAL_MEM_SIZE": "16384"}
    out = run_clean(DRIVER, env, "--native")
    assert out.count(": ok") == 3, out
