"""Queued training steps under Oclgrind: the record kernel (kernels/step_figures.cl), the pinned
and double-buffered inputs, and the uploads on a second queue, with every memory access and
data race checked (see test_oclgrind.py for how the subprocess sees Oclgrind)."""

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

# Steps queued on a tiny network, with a batch larger than the record kernel's work-group, for
# class-index and one-hot targets, uploads on a second queue (as on a GPU), every tensor in its
# own allocation; the figures are compared with the NumPy backend's.
DRIVER = textwrap.dedent("""
    import numpy as np
    import pyopencl as cl
    import cnnc
    from cnnc.backends.opencl.runtime import OpenCLBackend

    SPEC = '''
    network: wee
    input: [4, 4, 1]
    layers:
      - {conv2d: [2, 3], padding: same, activation: relu}
      - flatten
      - {dense: 3, activation: softmax}
    '''
    rng = np.random.default_rng(1)
    x = rng.random((2, 70, 4, 4, 1), dtype=np.float32)
    labels = rng.integers(0, 3, (2, 70))
    for loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        y = labels if loss.startswith("sparse") else np.eye(3, dtype=np.float32)[labels]
        backend = OpenCLBackend(isolate=True)
        backend._upload_queue = cl.CommandQueue(backend.device.context)
        model = cnnc.compile(SPEC, backend=backend, loss=loss)
        ref = cnnc.compile(SPEC, backend="numpy", loss=loss)
        for k in range(2):
            model.queue_train_step(x[k], y[k])
            ref.queue_train_step(x[k], y[k])
        got, want = model.read_queued_steps(), ref.read_queued_steps()
        assert [c for _, c in got] == [c for _, c in want], (got, want)
        np.testing.assert_allclose([v for v, _ in got], [v for v, _ in want], rtol=1e-4)
        print(loss, "ok", got)
""")


def test_queued_steps_are_clean_under_oclgrind(tmp_path):
    icd = tmp_path / "icd"
    icd.mkdir()
    (icd / "oclgrind.icd").write_text(f"{ICD_LIBRARY}\n")
    env = {**os.environ, "OCL_ICD_VENDORS": str(icd), "CNNC_DEVICE": "oclgrind",
           "OCLGRIND_DATA_RACES": "1", "PYTHONWARNINGS": "ignore",
           "CNNC_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-c", DRIVER], env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert run.stderr.strip() == "", f"Oclgrind reported problems:\n{run.stderr[:6000]}"
    assert run.returncode == 0, run.stdout
    assert run.stdout.count(" ok ") == 2, run.stdout
