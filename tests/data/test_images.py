"""Inputs for `cnnc predict`: image files resized and inverted, arrays checked and scaled."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.data.idx import write_idx
from cnnc.data.images import load_inputs
from cnnc.errors import InputError

SHAPE = (28, 28, 1)


def _png(path, array, mode=None):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    Image.fromarray(array).save(path)
    return str(path)


def test_dark_background_png_is_resized_not_inverted(tmp_path):
    img = np.zeros((56, 56), np.uint8)
    img[14:42, 14:42] = 255
    inputs = load_inputs([_png(tmp_path / "a.png", img)], SHAPE)
    assert inputs.x.shape == (1, 28, 28, 1) and inputs.x.dtype == np.float32
    assert inputs.notes == ()
    assert inputs.x[0, 14, 14, 0] > 0.9 and inputs.x[0, 1, 1, 0] < 0.05


def test_light_background_is_inverted_and_said(tmp_path):
    img = np.full((28, 28, 3), 255, np.uint8)
    img[10:18, 10:18] = 0
    inputs = load_inputs([_png(tmp_path / "photo.png", img)], SHAPE)
    assert inputs.x[0, 0, 0, 0] < 0.05 and inputs.x[0, 14, 14, 0] > 0.95
    assert "inverted" in inputs.notes[0]
    kept = load_inputs([str(tmp_path / "photo.png")], SHAPE, invert="no")
    assert kept.x[0, 0, 0, 0] > 0.95


def test_wide_image_keeps_its_aspect_ratio(tmp_path):
    img = np.full((10, 40), 255, np.uint8)  # a bright bar, four times wider than high
    x = load_inputs([_png(tmp_path / "bar.png", img)], SHAPE, invert="no").x[0, :, :, 0]
    rows = np.flatnonzero(x.max(axis=1) > 0.5)
    assert 5 <= len(rows) <= 9 and x[0].max() < 0.1  # padded above and below


def test_arrays_one_or_many(tmp_path):
    one = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    np.save(tmp_path / "one.npy", one)
    many = np.random.default_rng(1).random((3, 28, 28, 1)).astype(np.float32)
    np.save(tmp_path / "many.npy", many)
    write_idx(tmp_path / "imgs-idx3-ubyte.gz", np.stack([one, one]))
    inputs = load_inputs([str(tmp_path / "one.npy"), str(tmp_path / "many.npy"),
                          str(tmp_path / "imgs-idx3-ubyte.gz")], SHAPE)
    assert inputs.x.shape == (6, 28, 28, 1)
    np.testing.assert_allclose(inputs.x[0, :, :, 0], one / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(inputs.x[1:4], many)
    assert inputs.names[1].endswith("many.npy[0]") and inputs.names[5].endswith("[1]")


@pytest.mark.parametrize("array, message", [
    (np.zeros((2, 27, 28), np.uint8),
     r"expects shape \(N, 28, 28, 1\), received \(2, 27, 28\)"),
    (np.full((28, 28), 7.0), r"ranges over \[7, 7\]; float images must be in \[0, 1\]"),
    (np.full((28, 28), np.nan),
     r"contains 784 NaN or infinite value\(s\), the first at index \(0, 0, 0, 0\)"),
])
def test_bad_arrays(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputError, match=message) as err:
        load_inputs([str(tmp_path / "bad.npy")], SHAPE)
    assert "bad.npy" in str(err.value)


def test_unreadable_files(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a png")
    pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    with pytest.raises(InputError, match="x.png: not an image"):
        load_inputs([str(tmp_path / "x.png")], SHAPE)
    with pytest.raises(InputError, match="missing.png: no such file"):
        load_inputs([str(tmp_path / "missing.png")], SHAPE)
    (tmp_path / "x.npy").write_bytes(b"junk")
    with pytest.raises(InputError, match="x.npy: not a readable .npy array"):
        load_inputs([str(tmp_path / "x.npy")], SHAPE)
    (tmp_path / "t-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(InputError, match="magic number"):
        load_inputs([str(tmp_path / "t-idx3-ubyte")], SHAPE)
