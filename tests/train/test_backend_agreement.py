"""One epoch of the same spec, seed and data on the NumPy and OpenCL backends agrees (slow).

The spec (below) has what the training graph must get right on both backends: a convolution
without bias into batch normalisation, one with bias and ReLU, max pooling, dropout, a softmax
dense layer, and Nadam (the seed recipe's optimizer, Keras' defaults). It trains one full epoch
on Fashion-MNIST (55,000 images in batches of 32, the last 5,000 held out) on each backend, and
both are evaluated on the 10,000 test images.

Tolerance: losses (training, validation, test) within 2% of each other (relative) and
accuracies within 1 point. Why not tighter: the backends sum in different orders, so their
float32 results differ in the last bits, and training amplifies such differences step by step
(Adam-type updates of near-zero gradients most of all). The NumPy backend alone in float32 and in
float64 drifts apart the same way: on specs/fashion.yaml their losses differ by 5% after 30
steps. Measured here (2026-11-28, Debian's pocl on the 2-core CPU): training loss 0.43768
(NumPy) vs 0.43705 (OpenCL), test accuracy 87.51% vs 87.61%. A wrong kernel moves these figures
by far more than the tolerance.

Run with: .venv/bin/python -m pytest tests/train/test_backend_agreement.py -m slow -s
Uses the real files when Debian's dataset-fashion-mnist is installed, else synthetic 28x28 data
of the same size. About 80 seconds to 3 minutes on 2 cores, most of it the NumPy backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import cnnc
from cnnc.data.catalog import FASHION_MNIST
from cnnc.data.synthetic import write_synthetic_dataset

REAL = Path(FASHION_MNIST.system_dirs[0])  # where Debian's package puts it

SPEC = """\
network: agreement
input: [28, 28, 1]
layers:
  - {conv2d: [16, 3], padding: same, use_bias: false}
  - batchnorm
  - {activation: relu}
  - {maxpool2d: 2}
  - {conv2d: [32, 3], padding: same, activation: relu}
  - {maxpool2d: 2}
  - flatten
  - {dropout: 0.25}
  - {dense: 10, activation: softmax}
train:
  epochs: 1
  batch_size: 32
  optimizer: nadam
  validation_size: 5000
  seed: 0
"""


@pytest.mark.slow
def test_one_epoch_numpy_and_opencl_agree(tmp_path, opencl_status):
    if not opencl_status[0]:
        pytest.skip(opencl_status[1])
    data = REAL if REAL.is_dir() else write_synthetic_dataset(tmp_path, train=60000,
                                                              test=10000)
    results = {}
    for backend in ("numpy", "opencl"):
        model = cnnc.compile(SPEC, backend=backend)
        record = model.fit(data_dir=data, verbose=0).epochs[0]
        test = model.evaluate(data_dir=data, verbose=0)
        results[backend] = record | {"test_loss": test.loss, "test_accuracy": test.accuracy}
        print(f"\n{backend:>6}: " + "  ".join(
            f"{k} {results[backend][k]:.5f}" for k in ("loss", "accuracy", "val_loss",
                                                         "val_accuracy", "test_loss",
                                                         "test_accuracy")))
    a, b = results["numpy"], results["opencl"]
    for key in ("loss", "val_loss", "test_loss"):
        assert b[key] == pytest.approx(a[key], rel=0.02), key
    for key in ("accuracy", "val_accuracy", "test_accuracy"):
        assert abs(b[key] - a[key]) <= 0.01, key
