"""Small synthetic datasets in the real files' IDX layout, for tests and offline smoke runs.

Each class has its own random prototype image; an example is its class's prototype, shifted by up
to a pixel, with noise. A small network learns them in an epoch or two, so tests can check that
training lowers the loss without the real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnc.data.catalog import FASHION_MNIST, DatasetInfo
from cnnc.data.idx import write_idx


def synthetic_split(n: int, shape: tuple[int, int] = (28, 28), classes: int = 10,
                    seed: int = 0, part: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, H, W), labels uint8 (n,)); prototypes depend on `seed` only, the
    examples on (seed, part), so a training and a test part share classes but not examples."""
    protos = np.random.default_rng(seed).random((classes, *shape)) < 0.3
    rng = np.random.default_rng([seed, part, n])
    labels = rng.integers(0, classes, size=n).astype(np.uint8)
    images = protos[labels].astype(np.float32) * 200.0
    for axis in (1, 2):
        shifts = rng.integers(-1, 2, size=n)
        images = np.stack([np.roll(img, s, axis=axis - 1) for img, s in zip(images, shifts)])
    images += rng.normal(0.0, 25.0, size=images.shape)
    return np.clip(images, 0, 255).astype(np.uint8), labels


def write_synthetic_dataset(folder: str | Path, *, train: int = 256, test: int = 64,
                            shape: tuple[int, int] = (28, 28), classes: int = 10, seed: int = 0,
                            compress: bool = True, info: DatasetInfo = FASHION_MNIST) -> Path:
    """Write the four IDX files of `info` (with synthetic content) into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = synthetic_split(train, shape, classes, seed)
    test_x, test_y = synthetic_split(test, shape, classes, seed, part=1)
    arrays = {"train_images": train_x, "train_labels": train_y,
              "test_images": test_x, "test_labels": test_y}
    for file in info.files:
        name = file.gz_name if compress else file.name
        write_idx(folder / name, arrays[file.role], compress=compress)
    return folder
