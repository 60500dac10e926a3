"""Finding dataset files: the search order, explicit folders, and the error with no data."""

from __future__ import annotations

import pytest

from cnnc.data import load_dataset
from cnnc.data.catalog import FASHION_MNIST, MNIST, dataset_info
from cnnc.data.locate import locate_dataset
from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.errors import DataError


def test_explicit_folder_wins(tmp_path, monkeypatch):
    explicit = write_synthetic_dataset(tmp_path / "mine", train=20, test=10)
    env = write_synthetic_dataset(tmp_path / "env", train=30, test=10)
    monkeypatch.setenv("CNNC_DATA", str(env))
    found = locate_dataset(FASHION_MNIST, explicit)
    assert found.folder == explicit and found.origin == "--data"


def test_explicit_folder_never_falls_through(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNC_DATA", str(write_synthetic_dataset(tmp_path / "env")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as info:
        locate_dataset(FASHION_MNIST, tmp_path / "empty")
    msg = str(info.value)
    assert "--data" in msg and str(tmp_path / "empty") in msg
    assert "train-images-idx3-ubyte.gz" in msg


def test_subfolder_named_for_the_dataset(tmp_path):
    write_synthetic_dataset(tmp_path / "data" / "fashion_mnist")
    found = locate_dataset(FASHION_MNIST, tmp_path / "data")
    assert found.folder == tmp_path / "data" / "fashion_mnist"


def test_uncompressed_files_are_found(tmp_path):
    write_synthetic_dataset(tmp_path, compress=False)
    found = locate_dataset(FASHION_MNIST, tmp_path)
    assert found.paths["train_images"].name == "train-images-idx3-ubyte"


def test_order_env_then_cache_then_system(tmp_path, monkeypatch, no_system_dirs):
    info = dataset_info("fashion_mnist")  # without the Debian folder
    with pytest.raises(DataError):
        locate_dataset(info)
    cache = write_synthetic_dataset(tmp_path / "cache" / "fashion_mnist")
    assert locate_dataset(info).origin == "user cache"
    env = write_synthetic_dataset(tmp_path / "env")
    monkeypatch.setenv("CNNC_DATA", str(env))
    found = locate_dataset(info)
    assert (found.folder, found.origin) == (env, "$CNNC_DATA")
    monkeypatch.setenv("CNNC_DATA", str(tmp_path / "nothing-here"))
    assert locate_dataset(info).folder == cache


def test_partial_folder_is_reported_not_used(tmp_path, no_system_dirs):
    folder = write_synthetic_dataset(tmp_path / "cache" / "fashion_mnist")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        locate_dataset(dataset_info("fashion_mnist"))
    assert "has only 3 of the 4 files, missing t10k-labels-idx1-ubyte.gz" in str(info.value)


def test_not_found_offline_names_folders_and_both_remedies(tmp_path, monkeypatch,
                                                           no_system_dirs):
    monkeypatch.setenv("CNNC_DATA", str(tmp_path / "mydata"))
    with pytest.raises(DataError) as info:
        load_dataset("fashion_mnist")
    msg = str(info.value)
    assert str(tmp_path / "mydata") in msg
    assert str(tmp_path / "cache" / "fashion_mnist") in msg
    assert "$CNNC_OFFLINE" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "copy the four files" in msg and "--data FOLDER" in msg


def test_debian_folder_is_listed_when_empty(tmp_path, monkeypatch):
    import dataclasses

    from cnnc.data import catalog

    info = dataclasses.replace(FASHION_MNIST, system_dirs=(str(tmp_path / "usr-share"),))
    monkeypatch.setitem(catalog.DATASETS, "fashion_mnist", info)
    with pytest.raises(DataError) as err:
        load_dataset("fashion_mnist")
    assert f"{tmp_path / 'usr-share'} (Debian package dataset-fashion-mnist): no such folder" \
        in str(err.value)


def test_mnist_error_says_there_is_no_debian_package(no_system_dirs):
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    msg = str(info.value)
    assert "MNIST files not found" in msg and "Debian has no package" in msg


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'fashion'"):
        load_dataset("fashion")


def test_mnist_and_fashion_share_the_file_layout(tmp_path):
    write_synthetic_dataset(tmp_path / "m", info=MNIST)
    data = load_dataset("mnist", tmp_path / "m")
    assert data.class_names[3] == "3" and len(data.train) == 256
