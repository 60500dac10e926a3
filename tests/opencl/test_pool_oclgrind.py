"""Pooling with ONNX's options (explicit pads, ceil_mode, count_include_pad, dilations) under
Oclgrind (see test_oclgrind.py): forward and gradient kernels of pool.cl with every access
checked, with a CPU's and a GPU's tiling, and once with GPU-like limits (work-groups of at most
128 work-items, 16 KiB of local memory)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401  (fixture, mark)

DRIVER = Path(__file__).with_name("pool_oclgrind_driver.py")


@pytest.mark.slow(reason="about 15 s: two tilings of two training steps simulated by Oclgrind; "
                        "the GPU-like run below stays in the default suite")
def test_onnx_pooling_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    assert out.count(": ok") == 4, out


def test_onnx_pooling_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "128", "OCLGRIND_LOCAL_MEM_SIZE": "16384"}
    out = run_clean(DRIVER, env, "--native")
    assert out.count(": ok") == 2, out
