"""The data-movement kernels (copy_block, concat_rows, pad_rows, resample.cl) under Oclgrind (see
test_oclgrind.py): every access checked, data races detected, cut as a CPU's and as a GPU's,
and once with GPU-like limits (work-groups of at most 128 work-items, 16 KiB of local memory)."""

from __future__ import annotations

from pathlib import Path

from test_data_movement import NETWORKS
from test_oclgrind import (  # noqa: F401  (fixture, mark)
    cuts,
    oclgrind_env,
    pytestmark,
    run_clean,
    with_cut,
)

DRIVER = Path(__file__).with_name("data_movement_oclgrind_driver.py")


# The GPU's cut (local-memory tiles, where races hide) by default; the CPU's under -m slow.
@cuts("gpu", "cpu")
def test_data_movement_clean_under_oclgrind(oclgrind_env, cut):  # noqa: F811
    out = run_clean(DRIVER, with_cut(oclgrind_env, cut))
    assert out.count(": ok") == 2 * len(NETWORKS), out


def test_data_movement_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "128", "OCLGRIND_LOCAL_MEM_SIZE": "16384",
           "OCLGRIND_COMPUTE_UNITS": "4"}
    out = run_clean(DRIVER, env, "--native")
    assert out.count(": ok") == 2 * len(NETWORKS), out
