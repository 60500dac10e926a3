"""The Winograd kernels under Oclgrind (see test_oclgrind.py): every access checked, data races
detected, with a CPU's and a GPU's tiling, and once with GPU-like limits (work-groups of at most
128 work-items, 16 KiB of local memory) so that a launch outside the limits fails here."""

from __future__ import annotations

import math
import re
from pathlib import Path

from test_oclgrind import (  # noqa: F401  (fixture, mark)
    cuts,
    oclgrind_env,
    pytestmark,
    run_clean,
    with_cut,
)

DRIVER = Path(__file__).with_name("winograd_oclgrind_driver.py")


def _run(env: dict[str, str], *args: str) -> str:
    return run_clean(DRIVER, env, *args)


# The GPU's cut (local-memory tiles, where races hide) by default; the CPU's under -m slow.
@cuts("gpu", "cpu")
def test_winograd_kernels_clean_under_oclgrind(oclgrind_env, cut):  # noqa: F811
    out = _run(with_cut(oclgrind_env, cut))
    assert out.count(": ok") == 14, out


def test_winograd_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "128", "OCLGRIND_LOCAL_MEM_SIZE": "16384"}
    out = _run(env, "--native")
    assert out.count(": ok") == 14, out
    groups = {tuple(map(int, g.split(","))) for g in re.findall(r"\((\d+(?:, \d+)*),?\)", out)}
    assert groups and all(math.prod(g) <= 128 for g in groups), out  # every launch's group
