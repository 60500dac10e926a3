"""Training sanity: a few hundred steps (240) of each optimizer learn a small synthetic problem."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.model import compile_model
from cnnc.testing.nets import chain

OPTIMIZERS = {
    "sgd": {"name": "sgd", "learning_rate": 0.05},
    "sgd_momentum": {"name": "sgd", "learning_rate": 0.02, "momentum": 0.9},
    "sgd_nesterov": {"name": "sgd", "learning_rate": 0.02, "momentum": 0.9, "nesterov": True},
    "adam": {"name": "adam", "learning_rate": 0.01},
    "nadam": {"name": "nadam", "learning_rate": 0.01},
}


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images: class k has a bright 4x4 patch in quadrant k (of three), under noise."""
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.5, (n, 8, 8, 1))
    for k, (r, c) in enumerate([(0, 0), (0, 4), (4, 2)]):
        x[y == k, r:r + 4, c:c + 4] += 1.0
    return x.astype(np.float32), y


def mean_loss(model, x, y) -> float:
    p = model.predict(x, batch_size=64)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1)).mean())


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_optimizer_drives_the_loss_down(optimizer):
    rng = np.random.default_rng(0)
    x, y = synthetic(96, rng)
    net = chain((8, 8, 1), ("conv2d", 4, 3, {"padding": "same", "activation": "relu"}),
                ("batchnorm",), ("maxpool2d", 2), ("flatten",), ("dropout", 0.2),
                ("dense", 3, {"activation": "softmax"}))
    model = compile_model(net, seed=1, optimizer=OPTIMIZERS[optimizer])
    before = mean_loss(model, x, y)
    for step in range(240):
        batch = slice(32 * (step % 3), 32 * (step % 3 + 1))
        model.train_step(x[batch], y[batch])
    after = mean_loss(model, x, y)
    assert before > 0.6
    assert after < 0.1 * before, f"{optimizer}: loss {before:.3f} -> {after:.3f}"
    assert (model.predict(x).argmax(axis=1) == y).mean() > 0.95
