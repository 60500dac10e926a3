"""Local response normalisation's kernels (kernels/lrn.cl) under Oclgrind (see
test_oclgrind.py): every access checked, data races detected, with a CPU's and a GPU's
elements per work-item, and once with GPU-like limits (work-groups of at most 64 work-items,
16 KiB of local memory, 4 compute units)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401  (fixture, mark)

DRIVER = Path(__file__).with_name("lrn_oclgrind_driver.py")


@pytest.mark.slow(reason="four simulated training steps, about 8 s under Oclgrind; the GPU-like "
                        "run below (two steps, about 3 s) runs by default over the same kernels")
def test_lrn_forward_and_gradient_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    assert out.count(": ok") == 4, out


def test_lrn_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "16384",
           "OCLGRIND_COMPUTE_UNITS": "4"}
    out = run_clean(DRIVER, env, "--native")
    assert out.count(": ok") == 2, out
