"""Fixtures for the pictures: a tiny spec with two convolutions, its model, synthetic data."""

from __future__ import annotations

import pytest
from viz_spec import VIZ_SPEC

import cnnc
from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.testing.offline import isolate_datasets


@pytest.fixture(autouse=True)
def isolated_data_env(tmp_path, monkeypatch):
    isolate_datasets(monkeypatch, tmp_path / "cache")


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(VIZ_SPEC)
    return path


@pytest.fixture(scope="session")
def small_model():
    """The spec compiled on the NumPy backend with its initial (random) weights."""
    return cnnc.compile(VIZ_SPEC, backend="numpy", seed=0)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """Synthetic Fashion-MNIST-shaped files of 12x12 images: 96 train, 40 test."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("small-data"), train=96, test=40,
                                   shape=(12, 12))
