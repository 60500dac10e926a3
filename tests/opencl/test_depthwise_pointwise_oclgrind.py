"""The depthwise_pointwise launches (kernels/depthwise_pointwise.cl) under Oclgrind (see
test_oclgrind.py): every access checked, as a CPU's and a GPU's launches cut them (a CPU's with
the row kernel, the staged one and the one-phase one), and once with GPU-like limits (work-groups of at most 128 work-items, 16 KiB of local memory)."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import (  # noqa: F401  (fixture, mark)
    cuts,
    oclgrind_env,
    pytestmark,
    run_clean,
    with_cut,
)

DRIVER = Path(__file__).with_name("depthwise_pointwise_oclgrind_driver.py")


@cuts("gpu", "cpu")
def test_depthwise_pointwise_clean_under_oclgrind(oclgrind_env, cut):  # noqa: F811
    out = run_clean(DRIVER, with_cut(oclgrind_env, cut))
    # a CPU's cut runs the row kernel (its default), the staged and the one-phase kernels
    assert out.count(": ok") == (3 if cut == "cpu" else 1), out


def test_depthwise_pointwise_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "128", "OCLGRIND_LOCAL_MEM_SIZE": "16384"}
    out = run_clean(DRIVER, env, "--native")
    assert out.count(": ok") == 1, out
