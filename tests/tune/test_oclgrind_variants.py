"""Non-default kernel variants under Oclgrind with GPU-like limits (a work-group of at most 128
work-items, 16 KiB of local memory): a variant the tuner can pick must stay within the device's
limits and inside its buffers (see tests/opencl/test_oclgrind.py for the harness)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

OCLGRIND = Path("/usr/bin/oclgrind")
ICD_LIBRARY = Path("/usr/lib/oclgrind/liboclgrind-rt-icd.so")
DRIVER = Path(__file__).with_name("oclgrind_variants.py")

pytestmark = pytest.mark.skipif(
    not (OCLGRIND.exists() and ICD_LIBRARY.exists()),
    reason="oclgrind is not installed (apt-get install oclgrind)",
)


def test_non_default_variants_are_clean_under_gpu_like_limits(tmp_path):
    icd = tmp_path / "icd"
    icd.mkdir()
    (icd / "oclgrind.icd").write_text(f"{ICD_LIBRARY}\n")
    env = {
        **os.environ,
        "OCL_ICD_VENDORS": str(icd),
        "CNNC_DEVICE": "oclgrind",
        "CNNC_CACHE_DIR": str(tmp_path / "cache"),
        "CNNC_TUNE": "1",
        "OCLGRIND_DATA_RACES": "1",
        "OCLGRIND_MAX_WGSIZE": "128",
        "OCLGRIND_LOCAL_MEM_SIZE": "16384",
        "OCLGRIND_COMPUTE_UNITS": "2",
        "PYTHONWARNINGS": "ignore",
    }
    run = subprocess.run([sys.executable, str(DRIVER)], env=env, capture_output=True, text=True,
                         timeout=1200, check=False)
    assert run.stderr.strip() == "", f"Oclgrind reported problems:\n{run.stderr[:6000]}"
    assert run.returncode == 0, run.stdout
    lines = run.stdout.splitlines()
    assert len(lines) >= 10 and all(": ok" in line for line in lines), run.stdout
    groups = re.findall(r"\((\d+), (\d+)\)", run.stdout)
    assert groups and all(int(a) * int(b) <= 128 for a, b in groups), run.stdout
    assert any("no-local" in line and "groups []" in line for line in lines), run.stdout
