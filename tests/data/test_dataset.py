"""Loading a dataset: the four files checked against each other; inputs scaled to [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnc.data import load_dataset, to_inputs, write_idx
from cnnc.data.catalog import FASHION_MNIST
from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.errors import DataError, InputError

REAL_FASHION = Path(FASHION_MNIST.system_dirs[0])  # where Debian's package puts it


def test_synthetic_dataset_loads(tmp_path):
    write_synthetic_dataset(tmp_path, train=50, test=20, shape=(8, 8))
    data = load_dataset("fashion_mnist", tmp_path)
    assert data.train.images.shape == (50, 8, 8) and data.train.images.dtype == np.uint8
    assert data.test.labels.shape == (20,) and data.test.labels.dtype == np.int32
    assert data.class_names[9] == "Ankle boot"


def test_count_mismatch_names_both_files(tmp_path):
    write_synthetic_dataset(tmp_path, train=50, test=20)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(49, np.uint8))
    with pytest.raises(DataError) as info:
        load_dataset("fashion_mnist", tmp_path)
    msg = str(info.value)
    assert "holds 50 images" in msg and "49 labels" in msg
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg


def test_truncated_file_is_an_error_not_a_smaller_dataset(tmp_path):
    write_synthetic_dataset(tmp_path, train=50, test=20, compress=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: truncated"):
        load_dataset("fashion_mnist", tmp_path)


def test_labels_out_of_range(tmp_path):
    write_synthetic_dataset(tmp_path, train=50, test=20)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(20, 12, np.uint8))
    with pytest.raises(DataError, match="label 12 at index 0 is outside 0..9"):
        load_dataset("fashion_mnist", tmp_path)


def test_images_must_be_three_dimensional_uint8(tmp_path):
    write_synthetic_dataset(tmp_path, train=50, test=20)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((50, 64), np.uint8))
    with pytest.raises(DataError, match="expected 3 dimensions"):
        load_dataset("fashion_mnist", tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((50, 8, 8), np.float32))
    with pytest.raises(DataError, match="expected uint8 pixels"):
        load_dataset("fashion_mnist", tmp_path)


def test_train_and_test_image_sizes_must_agree(tmp_path):
    write_synthetic_dataset(tmp_path, train=50, test=20, shape=(8, 8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((20, 9, 9), np.uint8))
    with pytest.raises(DataError, match="holds 8x8 images but .* holds 9x9 images"):
        load_dataset("fashion_mnist", tmp_path)


def test_to_inputs_scales_like_the_seed_code():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    x = to_inputs(images, (2, 2, 1))
    assert x.dtype == np.float32 and x.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(x[0, :, :, 0], images[0] / np.float32(255.0))


def test_to_inputs_rejects_another_shape():
    with pytest.raises(InputError, match=r"^the spec's input expects shape \(N, 32, 32, 1\), "
                                         r"received \(1, 28, 28\); the dataset"):
        to_inputs(np.zeros((1, 28, 28), np.uint8), (32, 32, 1))


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not "
                    f"installed ({REAL_FASHION})")
def test_real_fashion_mnist():
    data = load_dataset("fashion_mnist")
    assert data.source.origin.startswith("Debian package")
    assert data.train.images.shape == (60000, 28, 28)
    assert data.test.images.shape == (10000, 28, 28)
    # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    assert np.bincount(data.train.labels).tolist() == [6000] * 10
    assert np.bincount(data.test.labels).tolist() == [1000] * 10
    assert data.train.images.max() == 255 and data.train.images.min() == 0
