"""Every refusal a user meets reading their own data: the message names the file or folder and
says what is wrong (and `cnnc run` exits 2 on it: tests/train/test_own_data_runs.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cnnc.data.dataset import load_dataset
from cnnc.errors import DataError
from cnnc.input_limits import MAX_IMAGE_PIXELS
from cnnc.testing.own_data import (
    png_with_header_size,
    random_images,
    write_cifar,
    write_image_folder,
)

pytest.importorskip("PIL.Image", reason="Pillow is not installed")

SHAPE = (4, 4, 1)


def _folder(tmp_path):
    return write_image_folder(tmp_path / "d", per_class=3, classes=("cat", "dog"))


def _load(path, **options):
    return load_dataset("./d", path, input_shape=SHAPE, **options)


def _truncated_png(path):
    from PIL import Image

    Image.new("RGB", (20, 20), (1, 2, 3)).save(path)
    path.write_bytes(path.read_bytes()[:60])


@pytest.mark.parametrize("make, message", [
    (_truncated_png, r"cat/bad\.png: not an image cnnc can read"),
    (lambda p: p.write_text("not a picture"), r"cat/bad\.png: not an image cnnc can read"),
    # Over cnnc's bound, and (100,000 a side) over Pillow's own, which it checks in open().
    (lambda p: png_with_header_size(p, 9000, 9000),
     (rf"cat/bad\.png: the image is 9000x9000 pixels \(81 megapixels\), more than the "
     rf"{MAX_IMAGE_PIXELS // 10**6} cnnc reads")),
    (lambda p: png_with_header_size(p, 100_000, 100_000),
     (rf"cat/bad\.png: the image is more than the {MAX_IMAGE_PIXELS // 10**6} megapixels cnnc "
     "reads")),
    (lambda p: __import__("PIL.Image").Image.new("L", (1, 1)).save(p),
     r"cat/bad\.png: the image is 1x1 pixels, less than the 2 a side cnnc trains on"),
], ids=["corrupt", "not-an-image", "huge-header", "huge-header-bomb", "one-pixel"])
def test_a_bad_file_is_refused_by_default_and_skipped_on_request(tmp_path, make, message):
    root = _folder(tmp_path)
    make(root / "cat" / "bad.png")
    with pytest.raises(DataError, match=message) as info:
        _load(root)
    assert "bad_images: skip" in info.value.hint
    data = _load(root, bad_images="skip")
    assert len(data.skipped) == 1 and "bad.png" in data.skipped[0]
    assert len(data.train) + len(data.test) == 6  # the six good images, none lost


def test_every_skipped_file_is_listed(tmp_path):
    root = _folder(tmp_path)
    for i in range(3):
        (root / "dog" / f"junk{i}.jpg").write_bytes(b"\xff\xd8 junk")
    data = _load(root, bad_images="skip")
    assert sorted(s.split(":")[0].rsplit("/", 1)[1] for s in data.skipped) == \
        ["junk0.jpg", "junk1.jpg", "junk2.jpg"]


def test_a_class_with_every_image_skipped_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "d", per_class=4, classes=("cat", "dog"))
    for f in (root / "dog").iterdir():
        f.write_text("junk")
    with pytest.raises(DataError, match="every image of class 'dog' was skipped"):
        _load(root, bad_images="skip")


def test_an_empty_class_folder(tmp_path):
    root = _folder(tmp_path)
    (root / "eel").mkdir()
    with pytest.raises(DataError, match=r"d/eel: the class folder 'eel' holds no files"):
        _load(root)


@pytest.mark.skipif(os.name != "posix", reason="byte file names are POSIX")
def test_a_class_folder_with_a_non_utf8_name(tmp_path):
    root = _folder(tmp_path)
    bad = os.path.join(os.fsencode(root), b"caf\xe9")
    try:
        os.mkdir(bad)
    except OSError as err:  # a file system that insists on UTF-8 names
        pytest.skip(f"cannot make a non-UTF-8 name here: {err}")
    with open(os.path.join(bad, b"a.png"), "wb") as f:
        f.write((root / "cat" / "000.png").read_bytes())
    with pytest.raises(DataError, match=r"the class folder 'caf\\\\xe9' has a name that is not "
                                        r"valid UTF-8") as info:
        _load(root)
    assert info.value.hint == "rename the folder"
    str(info.value).encode("utf-8")  # printable: the message itself is valid UTF-8


def test_a_folder_with_no_class_folders(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="not a dataset cnnc reads"):
        _load(tmp_path / "d")


def test_val_folder_with_a_class_train_lacks(tmp_path):
    write_image_folder(tmp_path / "d" / "train", per_class=2, classes=("cat", "dog"))
    write_image_folder(tmp_path / "d" / "val", per_class=2, classes=("cat", "eel"))
    with pytest.raises(DataError, match=r"val: class folder 'eel' is not one of train/'s"):
        _load(tmp_path / "d")


def test_a_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.npz: no such file or folder"):
        load_dataset(str(tmp_path / "nowhere.npz"), input_shape=SHAPE)


def _npz(path, **arrays):
    base = {"x_train": random_images(4, (4, 4)), "y_train": np.array([0, 1, 0, 1]),
            "x_test": random_images(2, (4, 4)), "y_test": np.array([1, 0])}
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


@pytest.mark.parametrize("arrays, message", [
    ({"y_test": None}, r"d\.npz: no member y_test; it has x_test, x_train, y_train"),
    ({"y_train": np.array([0, 1, 0])},
     r"d\.npz: x_train holds 4 images but y_train holds 3 labels"),
    ({"y_train": np.array([0, 1, -1, 1])}, r"d\.npz: y_train: label -1 at index 2 is negative"),
    ({"class_names": np.array(["a", "b"]), "y_test": np.array([1, 2])},
     r"d\.npz: y_test: label 2 at index 1 is outside 0\.\.1, the 2 classes of class_names"),
    ({"y_train": np.array([0.0, 1.0, 0.0, 1.0])}, "labels must be integer class indices"),
    ({"x_test": random_images(2, (5, 5))}, "x_train holds 4x4 images but x_test holds 5x5"),
    ({"x_train": np.full((4, 4, 4), 2.0)}, r"float images must be in \[0, 1\]"),
])
def test_npz_refusals(tmp_path, arrays, message):
    path = _npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset("./d.npz", path, input_shape=SHAPE)


def test_npz_that_is_not_a_zip(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"PK but not really")
    with pytest.raises(DataError, match=r"d\.npz: not a readable \.npz archive"):
        load_dataset("./d.npz", tmp_path / "d.npz", input_shape=SHAPE)


def test_npz_with_a_pickled_member_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match=r"x_train\]: not a readable \.npy array \(it holds "
                                        r"Python objects"):
        load_dataset("./d.npz", tmp_path / "d.npz", input_shape=SHAPE)


def test_channels_cnnc_cannot_convert(tmp_path):
    path = _npz(tmp_path / "d.npz", x_train=random_images(4, (4, 4, 2)),
                x_test=random_images(2, (4, 4, 2)))
    with pytest.raises(DataError, match="the images have 2 channels and the spec's input takes"):
        load_dataset("./d.npz", path, input_shape=SHAPE)


def test_truncated_cifar_binary_batch(tmp_path):
    given, _ = write_cifar(tmp_path / "c", archive=False)
    batch = given / "cifar-10-batches-bin" / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"data_batch_3\.bin: 9209 bytes is not a whole number "
                                        r"of 3073-byte records"):
        load_dataset("./c", given, input_shape=(32, 32, 3))


def test_cifar_missing_a_batch(tmp_path):
    given, _ = write_cifar(tmp_path / "c", archive=False, binary=False)
    (given / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError, match=r"CIFAR-10 \(python\) is missing data_batch_4"):
        load_dataset("./c", given, input_shape=(32, 32, 3))


def test_cifar_label_out_of_range(tmp_path):
    given, _ = write_cifar(tmp_path / "c", archive=False)
    batch = given / "cifar-10-batches-bin" / "test_batch.bin"
    data = bytearray(batch.read_bytes())
    data[3073] = 10  # the second record's label
    batch.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"test_batch\.bin: label 10 at record 1 is outside 0\.\.9"):
        load_dataset("./c", given, input_shape=(32, 32, 3))


def test_a_tar_that_is_not_cifar(tmp_path):
    import tarfile

    with tarfile.open(tmp_path / "x.tar.gz", "w:gz") as tar:
        tar.add(__file__, arcname="README")
    with pytest.raises(DataError, match=r"x\.tar\.gz: the archive holds no CIFAR files"):
        load_dataset("./x.tar.gz", tmp_path / "x.tar.gz", input_shape=(32, 32, 3))


@pytest.mark.skipif(os.name != "posix", reason="byte file names are POSIX")
def test_a_skipped_file_with_a_non_utf8_name_is_listed_printably(tmp_path):
    root = _folder(tmp_path)
    bad = os.path.join(os.fsencode(root / "dog"), b"bad\xff.png")
    try:
        with open(bad, "wb") as f:
            f.write(b"junk")
    except OSError as err:
        pytest.skip(f"cannot make a non-UTF-8 name here: {err}")
    data = _load(root, bad_images="skip")
    (line,) = data.skipped
    assert "bad\\xff.png: not an image cnnc can read" in line
    line.encode("utf-8")  # printable on a UTF-8 terminal: no lone surrogates
