"""The whole kernel set under Oclgrind, an OpenCL simulator that checks every memory access.

Runs tests/opencl/oclgrind_driver.py in a subprocess whose ICD loader sees only Oclgrind (a
folder holding `oclgrind.icd` and OCL_ICD_VENDORS pointing at it, see NOTES.md), with data-race
detection on, every tensor in its own allocation, on tiny shapes, with a CPU's tiling and a
GPU's. Oclgrind reports problems on stderr and carries on, so the test fails on any stderr output.
(Its --uninitialized checker aborts on LLVM's `freeze` instruction, which pocl-era clang emits,
so it is not used.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

OCLGRIND = Path("/usr/bin/oclgrind")
ICD_LIBRARY = Path("/usr/lib/oclgrind/liboclgrind-rt-icd.so")
DRIVER = Path(__file__).with_name("oclgrind_driver.py")


@pytest.mark.skipif(
    not (OCLGRIND.exists() and ICD_LIBRARY.exists()),
    reason="oclgrind is not installed (apt-get install oclgrind)",
)
def test_every_kernel_is_clean_under_oclgrind(tmp_path):
    icd = tmp_path / "icd"
    icd.mkdir()
    (icd / "oclgrind.icd").write_text(f"{ICD_LIBRARY}\n")
    env = {
        **os.environ,
        "OCL_ICD_VENDORS": str(icd),
        "OCLGRIND_DATA_RACES": "1",
        "PYTHONWARNINGS": "ignore",
        "CNNC_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("CNNC_DEVICE", None)
    run = subprocess.run(
        [sys.executable, str(DRIVER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert (
        "Oclgrind"
        in subprocess.run(
            [sys.executable, "-m", "cnnc.cli", "devices"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    ), "the subprocess does not see the Oclgrind device"
    assert run.stderr.strip() == "", f"Oclgrind reported problems:\n{run.stderr[:6000]}"
    assert run.returncode == 0, run.stdout
    assert run.stdout.count(": ok") >= 4 * 20
