"""dense_pair's fused launch (kernels/dense_pair.cl) under Oclgrind (see test_oclgrind.py):
every access checked, data races detected (the hidden vector and the logits in local memory,
written by every work-item, read after the barriers), on test_dense_pair.py's pairs with a CPU's
vectors and, within a small GPU's limits, the device's own group
(dense_pair_oclgrind_driver.py)."""

from __future__ import annotations

from pathlib import Path

from dense_pair_oclgrind_driver import BATCHES
from test_dense_pair import PAIRS
from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401

DRIVER = Path(__file__).with_name("dense_pair_oclgrind_driver.py")


def test_dense_pair_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    assert "MISMATCH" not in out and out.count(": ok") == len(BATCHES) * len(PAIRS), out


def test_dense_pair_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """The device's own group (Oclgrind: a GPU's) under a small GPU's limits: 64 work-items
    per group, 4 KiB of local memory, one compute unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    out = run_clean(DRIVER, env, "--native")
    assert "MISMATCH" not in out and out.count(": ok") == len(BATCHES) * len(PAIRS), out
