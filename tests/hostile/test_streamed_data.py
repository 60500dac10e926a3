"""Streaming (`train.stream: true`): an image folder whose training set does not fit in the
memory the process is given still trains, its peak memory bounded by a batch, not the folder."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PIL.Image", reason="Pillow is not installed")

SIDE = 96
PER_CLASS = 2000  # 4,000 training images: 111 MB as uint8, 442 MB as float32 inputs
MEMORY_MB = 600  # over the server's size: less than the data read whole takes
SECONDS = 240

SPEC = f"""\
network: streamed
input: [{SIDE}, {SIDE}, 3]
layers:
  - {{conv2d: [2, 3], strides: 4, activation: relu}}
  - {{globalaveragepooling2d: {{}}}}
  - {{dense: 2, activation: softmax}}
train:
  dataset: fashion_mnist
  epochs: 1
  batch_size: 64
  optimizer: sgd
  stream: {{stream}}
"""


def _folder(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for part, count in (("train", PER_CLASS), ("test", 4)):
        for name in ("a", "b"):
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.bmp")
    return root


@pytest.mark.slow
def test_a_folder_larger_than_memory_trains_when_streamed(tmp_path):
    from bounded import BoundedCnnc

    data = _folder(tmp_path / "data")
    outcomes = {}
    # glibc reserves 64 MB of address space per thread arena: with one per decoding thread on
    # a many-core machine the cap would measure those reservations, not the data.
    with BoundedCnnc(env={"MALLOC_ARENA_MAX": "2"}) as bounded:
        for stream in ("false", "true"):
            spec = tmp_path / f"{stream}.yaml"
            spec.write_text(SPEC.replace("{stream}", stream))
            outcomes[stream] = bounded.run(
                ["run", spec, "--data", data, "--backend", "numpy", "--progress", "off",
                 "--out", tmp_path / stream], memory_mb=MEMORY_MB, timeout_s=SECONDS)
    whole, streamed = outcomes["false"], outcomes["true"]
    print(f"read whole: {whole.describe()}\nstreamed: {streamed.describe()}")
    # Read whole, the data does not fit in what the process is given ...
    assert whole.rc == 2 and "out of memory" in whole.stderr.lower(), whole.describe()
    # ... streamed, it trains to the end, within it.
    assert streamed.rc == 0, streamed.describe()
    assert "training images streamed from a temporary file" in streamed.stdout
    assert "examples  train 4,000" in streamed.stdout
    assert streamed.peak_mb < MEMORY_MB, streamed.describe()
