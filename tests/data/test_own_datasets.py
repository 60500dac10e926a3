"""The user's own datasets: image folders, .npz and .npy files, CIFAR archives, read to the spec's
input shape with the right labels and class names (every file made here, nothing downloaded)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.data.dataset import load_dataset
from cnnc.testing.own_data import (
    COLOURS,
    luma,
    random_images,
    write_cifar,
    write_image_folder,
)

pytest.importorskip("PIL.Image", reason="Pillow is not installed")


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_classes_labels_and_channels(tmp_path, channels):
    root = write_image_folder(tmp_path / "pets", per_class=5)
    data = load_dataset("fashion_mnist", root, input_shape=(6, 5, channels))
    assert data.class_names == ("cat", "dog", "eel")  # the folder names, sorted
    assert data.info.title == "image folder"
    assert len(data.train) + len(data.test) == 15 and len(data.test) == 3  # 20% held out
    assert set(data.train.labels.tolist()) | set(data.test.labels.tolist()) == {0, 1, 2}
    for split in (data.train, data.test):
        want_shape = (6, 5) if channels == 1 else (6, 5, 3)
        assert split.images.shape[1:] == want_shape and split.images.dtype == np.uint8
        for image, label in zip(split.images, split.labels):
            rgb = COLOURS[data.class_names[label]]
            # Grayscale files repeat their luma to RGB; flat images survive resizing exactly
            # (JPEG's colour conversion within 2 levels).
            want = np.array([luma(rgb)] if channels == 1 else rgb)
            got = image.reshape(-1, channels)
            if channels == 3 and not np.allclose(got, want, atol=2):
                want = np.array([luma(rgb)] * 3)  # a file saved in grayscale
            np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), atol=2)


def test_image_folder_order_is_fixed_and_mixes_classes(tmp_path):
    root = write_image_folder(tmp_path / "pets", per_class=10)
    a = load_dataset("./x", root, input_shape=(4, 4, 1))
    b = load_dataset("./x", root, input_shape=(4, 4, 1))
    np.testing.assert_array_equal(a.train.labels, b.train.labels)
    # The last fraction (validation or test) holds more than one class.
    assert len(set(a.test.labels.tolist())) > 1
    assert len(set(a.train.labels[-6:].tolist())) > 1


def test_train_val_test_folders(tmp_path):
    for part, n in (("train", 4), ("val", 2), ("test", 3)):
        write_image_folder(tmp_path / "d" / part, per_class=n, classes=("cat", "dog"))
    data = load_dataset("./d", tmp_path / "d", input_shape=(5, 5, 3))
    assert len(data.train) == 8 and len(data.validation) == 4 and len(data.test) == 6
    assert data.class_names == ("cat", "dog")
    assert any("train/, val/, test/" in n for n in data.notes)


def test_crop_keeps_the_centre_and_resize_stretches(tmp_path):
    from PIL import Image

    # 8 wide, 4 tall: black, white, black columns (2, 4, 2). The input is 4x4: crop takes the
    # centred 4x4 box (all white); resize squeezes the width, keeping dark edges.
    pixels = np.zeros((4, 8), np.uint8)
    pixels[:, 2:6] = 255
    (tmp_path / "f" / "only").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(pixels).save(tmp_path / "f" / "only" / f"{i}.png")
    crop = load_dataset("./f", tmp_path / "f", input_shape=(4, 4, 1), image_fit="crop")
    assert np.all(crop.train.images == 255)
    resized = load_dataset("./f", tmp_path / "f", input_shape=(4, 4, 1))
    assert resized.train.images[0, :, 0].max() < 128 and resized.train.images[0, :, 1:3].min() > 128


def test_npz_in_keras_layout_with_channel_conversion(tmp_path):
    x_train = np.zeros((6, 4, 4, 3), np.uint8)
    x_train[..., 0] = 200  # pure red: luma (200 * 19595 + 32768) >> 16 = 60
    np.savez(tmp_path / "d.npz", x_train=x_train, y_train=np.arange(6)[:, None] % 3,
             x_test=random_images(2, (4, 4, 3)), y_test=np.array([0, 2]))
    data = load_dataset("./d.npz", tmp_path / "d.npz", input_shape=(4, 4, 1))
    assert data.train.images.shape == (6, 4, 4) and np.all(data.train.images == 60)
    assert data.train.labels.tolist() == [0, 1, 2, 0, 1, 2]  # (N, 1) labels flattened
    assert data.class_names == ("0", "1", "2")
    # The same data from the spec's train.dataset (a path), and its class names when given.
    np.savez(tmp_path / "n.npz", x_train=x_train, y_train=np.arange(6) % 2, x_test=x_train[:2],
             y_test=np.array([1, 0]), class_names=np.array(["no", "yes"]))
    named = load_dataset(str(tmp_path / "n.npz"), input_shape=(4, 4, 3))
    assert named.class_names == ("no", "yes") and named.train.images.shape == (6, 4, 4, 3)


def test_npy_folder(tmp_path):
    folder = tmp_path / "arrays"
    folder.mkdir()
    x = random_images(5, (6, 6))
    for name, value in (("x_train", x), ("y_train", np.arange(5) % 2), ("x_test", x[:2]),
                        ("y_test", np.array([1, 1]))):
        np.save(folder / f"{name}.npy", value)
    data = load_dataset("./arrays", folder, input_shape=(6, 6, 1))
    np.testing.assert_array_equal(data.train.images, x)
    assert data.test.labels.tolist() == [1, 1] and data.class_names == ("0", "1")


@pytest.mark.parametrize("hundred", [False, True], ids=["cifar10", "cifar100"])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "python"])
@pytest.mark.parametrize("archive", [True, False], ids=["tar.gz", "folder"])
def test_cifar_archives(tmp_path, hundred, binary, archive):
    given, want = write_cifar(tmp_path / "c.tar.gz" if archive else tmp_path / "c",
                              hundred=hundred, binary=binary, archive=archive, protocol=4)
    data = load_dataset("fashion_mnist", given, input_shape=(32, 32, 3))
    assert data.info.name == ("cifar100" if hundred else "cifar10")
    for split, part in ((data.train, "train"), (data.test, "test")):
        np.testing.assert_array_equal(split.images, want[part][0])
        np.testing.assert_array_equal(split.labels, want[part][1])
    assert len(data.class_names) == (100 if hundred else 10)
    assert data.class_names[3] == "class3"


def test_cifar_pixel_layout_by_hand(tmp_path):
    import tarfile

    write_cifar(tmp_path / "c.tar.gz", per_batch=1)
    data = load_dataset("./c.tar.gz", tmp_path / "c.tar.gz", input_shape=(32, 32, 3))
    with tarfile.open(tmp_path / "c.tar.gz") as tar:
        record = tar.extractfile("cifar-10-batches-bin/data_batch_1.bin").read()
    # Byte 1 + 1024*c + 32*y + x is channel c of pixel (y, x); byte 0 the label.
    assert data.train.labels[0] == record[0]
    for y, x, c in ((0, 0, 0), (1, 2, 0), (31, 5, 1), (7, 30, 2)):
        assert data.train.images[0, y, x, c] == record[1 + 1024 * c + 32 * y + x]


def test_cifar_python_protocol_2_as_python_3_writes_it(tmp_path):
    given, want = write_cifar(tmp_path / "c", binary=False, archive=False, protocol=2)
    data = load_dataset("./c", given, input_shape=(32, 32, 1))
    # CIFAR's RGB becomes the spec's one channel, by luma.
    r, g, b = (want["test"][0][..., i].astype(np.int64) for i in range(3))
    np.testing.assert_array_equal(data.test.images, (r * 19595 + g * 38470 + b * 7471 + 32768)
                                  >> 16)
    # ... exactly as Pillow converts the same pixels.
    from PIL import Image

    first = Image.fromarray(want["test"][0][0]).convert("L")
    np.testing.assert_array_equal(data.test.images[0], np.asarray(first))


def test_streamed_folder_reads_the_same_images(tmp_path):
    from cnnc.data.dataset import to_inputs
    from cnnc.data.streamed import DiskImages, StreamedInputs

    root = write_image_folder(tmp_path / "pets", per_class=6)
    (root / "dog" / "zz-bad.png").write_text("junk")
    memory = load_dataset("./p", root, input_shape=(5, 6, 3), bad_images="skip")
    disk = load_dataset("./p", root, input_shape=(5, 6, 3), bad_images="skip", stream=True)
    assert isinstance(disk.train.images, DiskImages) and len(disk.skipped) == 1
    assert isinstance(disk.test.images, np.ndarray)  # only the training part streams
    np.testing.assert_array_equal(disk.train.labels, memory.train.labels)
    x_memory = to_inputs(memory.train.images, (5, 6, 3))
    x_disk = to_inputs(disk.train.images[2:], (5, 6, 3))
    assert isinstance(x_disk, StreamedInputs) and x_disk.shape == (len(memory.train) - 2, 5, 6, 3)
    idx = np.array([4, 0, 4, 9])
    np.testing.assert_array_equal(x_disk[idx], x_memory[2:][idx])  # bit-identical inputs
    np.testing.assert_array_equal(np.asarray(x_disk), x_memory[2:])
