"""The squeeze_excite launches (kernels/squeeze_excite.cl) under Oclgrind (see test_oclgrind.py):
every access checked, local memory's races included, as a CPU's and a GPU's group shapes cut
them, and once with GPU-like limits (work-groups of at most 128 work-items, 16 KiB of local
memory)."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import (  # noqa: F401  (fixture, mark)
    cuts,
    oclgrind_env,
    pytestmark,
    run_clean,
    with_cut,
)

DRIVER = Path(__file__).with_name("squeeze_excite_oclgrind_driver.py")


@cuts("gpu", "cpu")
def test_squeeze_excite_clean_under_oclgrind(oclgrind_env, cut):  # noqa: F811
    out = run_clean(DRIVER, with_cut(oclgrind_env, cut))
    assert out.count(": ok") == 1, out


def test_squeeze_excite_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "128", "OCLGRIND_LOCAL_MEM_SIZE": "16384"}
    out = run_clean(DRIVER, env, "--native")
    assert out.count(": ok") == 1, out
