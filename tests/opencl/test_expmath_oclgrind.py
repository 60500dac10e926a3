"""kernels/expmath.h under Oclgrind (float and float8): within the same ulp bounds as on the
device (tests/opencl/test_expmath.py), and nothing reported. Oclgrind 21.10 computed
clamp(int8, int, int) wrong, which made expm1 and tanh on vectors wrong by up to 1e10 there
while pocl was right: kernels that run on other drivers must not lean on such a built-in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from test_expmath import FUNCTIONS, SPECIAL, _ulps
from test_oclgrind import oclgrind_env, pytestmark  # noqa: F401

DRIVER = Path(__file__).with_name("expmath_oclgrind_driver.py")


def test_expmath_within_its_bounds_under_oclgrind(oclgrind_env, tmp_path):  # noqa: F811
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.uniform(-110, 95, 512), rng.uniform(-1, 1, 256), rng.uniform(-0.01, 0.01, 64),
        SPECIAL]).astype(np.float32)
    x = np.concatenate([x, np.zeros((-x.size) % 8, np.float32)])
    np.save(tmp_path / "x.npy", x)
    run = subprocess.run([sys.executable, str(DRIVER), str(tmp_path / "x.npy")],
                         env=oclgrind_env, capture_output=True, text=True, timeout=1200,
                         check=False)
    assert run.stderr.strip() == "", f"Oclgrind reported problems:\n{run.stderr[:6000]}"
    assert run.returncode == 0, run.stdout
    worst = {}
    for name, truth, limit, bound in FUNCTIONS:
        inside = np.ones(x.size, bool) if limit is None else np.abs(x) < limit
        if name == "log1p":  # log1p_unit's domain: u in [0, 1]
            inside = (x >= 0) & (x <= 1)
        for width in (1, 8):
            got = np.load(tmp_path / f"{name}_{width}.npy")
            with np.errstate(all="ignore"):
                err = _ulps(got[inside], truth(x[inside].astype(np.float64)))
            worst[f"{name}_{width}"] = float(err.max())
    bounds = {f[0]: f[3] for f in FUNCTIONS}
    assert all(v <= bounds[k.rsplit("_", 1)[0]] for k, v in worst.items()), worst

