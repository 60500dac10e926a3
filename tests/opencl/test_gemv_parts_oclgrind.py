"""A chain's gemv (gemv.cl's gemv_parts and gemv_sum) under Oclgrind (see test_oclgrind.py):
every access checked on the dense layers of test_chains.py at batch 1, 3 and 8
(gemv_parts_oclgrind_driver.py). Plans for chains are for CPU devices only: no GPU tiling."""

from __future__ import annotations

from pathlib import Path

from gemv_parts_oclgrind_driver import BATCHES
from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401

DRIVER = Path(__file__).with_name("gemv_parts_oclgrind_driver.py")


def test_gemv_parts_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    assert "MISMATCH" not in out and out.count(": ok") == len(BATCHES), out
