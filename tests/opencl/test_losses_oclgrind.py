"""The label-smoothed cross-entropy kernels (kernels/losses.cl) under Oclgrind: every memory
access checked, for class-index and soft (mixup's) targets, on a softmax output (fused
softmax_cross_entropy) and a sigmoid one (cross_entropy); figures compared with NumPy's (see
test_oclgrind.py for how the subprocess sees Oclgrind)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

OCLGRIND = Path("/usr/bin/oclgrind")
ICD_LIBRARY = Path("/usr/lib/oclgrind/liboclgrind-rt-icd.so")

pytestmark = pytest.mark.skipif(
    not (OCLGRIND.exists() and ICD_LIBRARY.exists()),
    reason="oclgrind is not installed (apt-get install oclgrind)",
)

DRIVER = textwrap.dedent("""
    import numpy as np
    import cnnc
    from cnnc.backends.opencl.runtime import OpenCLBackend

    SPEC = '''
    network: wee
    input: [3, 3, 1]
    layers:
      - flatten
      - {{dense: 4, activation: {activation}}}
    train:
      label_smoothing: 0.2
      augment: {{mixup: {mixup}}}
    '''
    rng = np.random.default_rng(2)
    x = rng.random((5, 3, 3, 1), dtype=np.float32)
    labels = rng.integers(0, 4, 5)
    lam = np.linspace(0.2, 0.8, 5)[:, None]
    soft = (lam * np.eye(4)[labels] + (1 - lam) * np.eye(4)[(labels + 1) % 4]).astype(np.float32)
    for activation in ("softmax", "sigmoid"):
        for mixup, y in ((0, labels), (0.2, soft)):
            spec = SPEC.format(activation=activation, mixup=mixup)
            model = cnnc.compile(spec, backend=OpenCLBackend(isolate=True))
            ref = cnnc.compile(spec, backend="numpy")
            got = [model.train_step(x, y) for _ in range(2)]
            want = [ref.train_step(x, y) for _ in range(2)]
            np.testing.assert_allclose(got, want, rtol=1e-4)
            print(activation, mixup, "ok", got)
""")


def test_smoothed_loss_kernels_are_clean_under_oclgrind(tmp_path):
    icd = tmp_path / "icd"
    icd.mkdir()
    (icd / "oclgrind.icd").write_text(f"{ICD_LIBRARY}\n")
    env = {**os.environ, "OCL_ICD_VENDORS": str(icd), "CNNC_DEVICE": "oclgrind",
           "PYTHONWARNINGS": "ignore", "CNNC_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-c", DRIVER], env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert run.stderr.strip() == "", f"Oclgrind reported problems:\n{run.stderr[:6000]}"
    assert run.returncode == 0, run.stdout
    assert run.stdout.count(" ok ") == 4, run.stdout
