"""The forward pass's reduction parts (conv2d.cl -D SPLIT, conv2d_parts_finish) under Oclgrind
(see test_oclgrind.py): every access checked, so a part that read channels past its slice or
wrote outside its slice of the workspace, or a finish that read past the parts, fails here."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401  (fixture, mark)

DRIVER = Path(__file__).with_name("forward_split_oclgrind_driver.py")


def test_forward_parts_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    lines = [x for x in out.splitlines() if x.strip()]
    # the seven convolutions in 4 parts (offered, or the default, or asked) and in 3
    assert sum("split=4" in x for x in lines) == 7, out
    assert sum("split=3" in x for x in lines) == 7, out
    assert all(x.endswith(": ok") for x in lines), out


def test_forward_parts_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """The device's own tiling (Oclgrind: a GPU's, whose parts drop its local tiles) under a
    small GPU's limits: 64 work-items per group, 4 KiB of local memory, one compute unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    out = run_clean(DRIVER, env, "--native")
    lines = [x for x in out.splitlines() if x.strip()]
    assert sum("split=" in x for x in lines) == 14, out
    assert all(x.endswith(": ok") for x in lines), out
