"""The same spec, seed and data trained on the NumPy and OpenCL backends agree (slow).

Each spec trains for one epoch on the first 6,400 Fashion-MNIST training images in batches of 32
(200 steps) on each backend, then both are evaluated on the first 2,000 test images:
- specs/fashion.yaml, the seed model (Nadam, dropout), exactly as its train section says;
- specs/fashion-plus.yaml (batch norm, dropout, Adam with a cosine schedule, shift and flip
  augmentation) with batch 32 instead of 128, so that its moving statistics (momentum 0.99)
  have settled enough for test figures to mean something after one short epoch.
Tolerances: the epoch's training loss within 1% (relative) and training accuracy within 1
point; test loss within 2% and test accuracy within 1 point. Float32 sums in different orders
drift apart a little each step; a wrong kernel moves these figures by far more.

Run with: .venv/bin/python -m pytest tests/train/test_backend_agreement.py -m slow -s
Uses the real files when Debian's dataset-fashion-mnist is installed, else synthetic 28x28 data.
About 3 minutes on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.data import load_dataset
from cnnc.data.synthetic import write_synthetic_dataset

REAL = Path("/usr/share/datasets/fashion-mnist")
TRAIN, TEST = 6400, 2000


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["specs/fashion.yaml", "specs/fashion-plus.yaml"])
def test_one_epoch_numpy_and_opencl_agree(spec, tmp_path, opencl_status):
    if not opencl_status[0]:
        pytest.skip(opencl_status[1])
    folder = REAL if REAL.is_dir() else write_synthetic_dataset(tmp_path, train=TRAIN + 100,
                                                                test=TEST)
    data = load_dataset("fashion_mnist", folder)
    x = data.train.images[:TRAIN, :, :, None] / np.float32(255)
    y = data.train.labels[:TRAIN]
    xt = data.test.images[:TEST, :, :, None] / np.float32(255)
    yt = data.test.labels[:TEST]
    results = {}
    for backend in ("numpy", "opencl"):
        model = cnnc.compile(spec, backend=backend)
        history = model.fit(x, y, epochs=1, batch_size=32, validation_split=0.0, verbose=0)
        results[backend] = (history.epochs[0], model.evaluate(xt, yt, verbose=0))
    (h_np, e_np), (h_cl, e_cl) = results["numpy"], results["opencl"]
    print(f"\n{spec}")
    print(f"numpy : train loss {h_np['loss']:.5f} acc {h_np['accuracy']:.4f}  "
          f"test loss {e_np.loss:.5f} acc {e_np.accuracy:.4f}")
    print(f"opencl: train loss {h_cl['loss']:.5f} acc {h_cl['accuracy']:.4f}  "
          f"test loss {e_cl.loss:.5f} acc {e_cl.accuracy:.4f}")
    assert h_cl["loss"] == pytest.approx(h_np["loss"], rel=0.01)
    assert abs(h_cl["accuracy"] - h_np["accuracy"]) <= 0.01
    assert e_cl.loss == pytest.approx(e_np.loss, rel=0.02)
    assert abs(e_cl.accuracy - e_np.accuracy) <= 0.01
