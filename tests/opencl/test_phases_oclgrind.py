"""The phases input gradient under Oclgrind (see test_oclgrind.py): every access checked, data
races detected, with a CPU's and a GPU's tiling, and once with GPU-like limits (work-groups of at
most 128 work-items, 16 KiB of local memory) so that a launch outside the limits fails here."""

from __future__ import annotations

import re
from pathlib import Path

from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401  (fixture, mark)

DRIVER = Path(__file__).with_name("phases_oclgrind_driver.py")
CASES = 4  # phases_oclgrind_driver.CASES


def _run(env: dict[str, str], *args: str) -> str:
    return run_clean(DRIVER, env, *args)


def test_phases_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = _run(oclgrind_env)
    assert out.count(": ok") == 3 * CASES, out


def test_phases_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "128", "OCLGRIND_LOCAL_MEM_SIZE": "16384"}
    out = _run(env, "--native")
    assert out.count(": ok") == CASES, out
    groups = {tuple(map(int, g.split(", "))) for g in re.findall(r"\((\d+(?:, \d+)*)\)", out)}
    assert groups and all(a * b <= 128 for a, b in groups), out  # the local tiles' groups
