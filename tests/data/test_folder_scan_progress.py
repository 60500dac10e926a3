"""A large image folder's first scan says what it reads and shows a progress bar (issue 21)."""

from __future__ import annotations

import io
from typing import ClassVar

import numpy as np
import pytest

from cnnc.data.folder import load_image_folder

pytest.importorskip("PIL.Image", reason="Pillow is not installed")
tqdm_module = pytest.importorskip("tqdm", reason="tqdm is not installed")


class RecordedBar:
    """tqdm's interface as the scan uses it, recording what it was told."""

    made: ClassVar[list[RecordedBar]] = []

    def __init__(self, total, **options):
        self.total, self.options, self.count, self.closed = total, options, 0, False
        RecordedBar.made.append(self)

    def update(self, n):
        self.count += n

    def close(self):
        self.closed = True


def _folder(root, per_class):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((2, 2), 200, np.uint8)).save(buf, "BMP")
    for part, count in (("train", per_class), ("test", 2)):
        for name in ("a", "b"):
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i}.bmp").write_bytes(buf.getvalue())
    return root


def test_a_folder_of_2000_images_logs_its_scan_and_counts_it_on_a_bar(tmp_path, monkeypatch):
    monkeypatch.setattr(RecordedBar, "made", [])
    monkeypatch.setattr(tqdm_module, "tqdm", RecordedBar)
    lines: list[str] = []
    data = load_image_folder(_folder(tmp_path / "d", 1000), (2, 2, 1), log=lines.append)
    assert data.train.labels.size == 2000 and np.all(data.train.images == 200)
    assert any(line.startswith("reading 2,004 images from ") and line.endswith(" threads")
               for line in lines), lines
    (bar,) = RecordedBar.made  # the training part's; the 4 test images get none
    assert bar.total == 2000 and bar.count == 2000 and bar.closed
    assert bar.options["disable"] is None  # tqdm's: shown on a terminal only


def test_a_small_folder_scans_without_a_bar_or_a_line(tmp_path, monkeypatch):
    monkeypatch.setattr(RecordedBar, "made", [])
    monkeypatch.setattr(tqdm_module, "tqdm", RecordedBar)
    lines: list[str] = []
    load_image_folder(_folder(tmp_path / "d", 10), (2, 2, 1), log=lines.append)
    assert RecordedBar.made == [] and not any(line.startswith("reading") for line in lines)
