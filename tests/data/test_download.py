"""Downloading into the cache from file:// mirrors written here (tests never use the network)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from cnnc.data import catalog, load_dataset
from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.errors import DataError


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@pytest.fixture
def mirror(tmp_path, monkeypatch, no_system_dirs):
    """A local 'server' folder with the four files; the dataset's checksums set to match."""
    served = write_synthetic_dataset(tmp_path / "served", train=40, test=10)
    info = catalog.DATASETS["fashion_mnist"]
    files = tuple(dataclasses.replace(f, md5=_md5(served / f.gz_name)) for f in info.files)
    info = dataclasses.replace(info, files=files, mirrors=(served.as_uri() + "/",))
    monkeypatch.setitem(catalog.DATASETS, "fashion_mnist", info)
    monkeypatch.delenv("CNNC_OFFLINE")
    return served


def test_download_into_the_cache_and_say_so(mirror, tmp_path):
    said = []
    data = load_dataset("fashion_mnist", log=said.append)
    cache = tmp_path / "cache" / "fashion_mnist"
    assert data.source.folder == cache and data.source.downloaded
    assert len(data.train) == 40
    assert any("downloading" in s and "into " + str(cache) in s for s in said)
    assert any("checksums verified" in s for s in said)
    for f in catalog.DATASETS["fashion_mnist"].files:
        assert _md5(cache / f.gz_name) == f.md5
    # The second time the cache answers; nothing is downloaded.
    said.clear()
    assert load_dataset("fashion_mnist", log=said.append).source.origin == "user cache"
    assert said == []


def test_checksum_mismatch_keeps_nothing(mirror, tmp_path, monkeypatch):
    info = catalog.DATASETS["fashion_mnist"]
    bad = (dataclasses.replace(info.files[0], md5="0" * 32),) + info.files[1:]
    monkeypatch.setitem(catalog.DATASETS, "fashion_mnist", dataclasses.replace(info, files=bad))
    with pytest.raises(DataError) as err:
        load_dataset("fashion_mnist", log=lambda s: None)
    assert "checksum mismatch" in str(err.value) and "published " + "0" * 32 in str(err.value)
    cache = tmp_path / "cache" / "fashion_mnist"
    assert not (cache / "train-images-idx3-ubyte.gz").exists()
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_second_mirror_is_tried(mirror, tmp_path, monkeypatch):
    info = catalog.DATASETS["fashion_mnist"]
    mirrors = ((tmp_path / "gone").as_uri() + "/",) + info.mirrors
    monkeypatch.setitem(catalog.DATASETS, "fashion_mnist",
                        dataclasses.replace(info, mirrors=mirrors))
    assert load_dataset("fashion_mnist", log=lambda s: None).source.downloaded


def test_no_network_error_names_folders_and_remedies(tmp_path, monkeypatch, no_system_dirs):
    info = catalog.DATASETS["fashion_mnist"]
    monkeypatch.setitem(catalog.DATASETS, "fashion_mnist", dataclasses.replace(
        info, mirrors=((tmp_path / "unreachable").as_uri() + "/",)))
    monkeypatch.delenv("CNNC_OFFLINE")
    with pytest.raises(DataError) as err:
        load_dataset("fashion_mnist", log=lambda s: None)
    msg = str(err.value)
    assert "downloading failed" in msg and "unreachable" in msg
    assert str(tmp_path / "cache" / "fashion_mnist") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "copy the four files" in msg


def test_published_checksums_are_the_official_ones():
    # The MD5s Fashion-MNIST's README publishes for its four .gz files.
    fm = {f.gz_name: f.md5 for f in catalog.FASHION_MNIST.files}
    assert fm["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert fm["t10k-labels-idx1-ubyte.gz"] == "bb300cfdad3c16e7a12a480ee83cd310"
    assert all(len(f.md5) == 32 for d in catalog.DATASETS.values() for f in d.files)
