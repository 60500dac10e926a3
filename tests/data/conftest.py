"""Fixtures for dataset tests: no downloads, a private cache, no $CNNC_DATA from the caller."""

from __future__ import annotations

import pytest

from cnnc.testing.offline import isolate_datasets


@pytest.fixture(autouse=True)
def isolated_data_env(tmp_path, monkeypatch):
    isolate_datasets(monkeypatch, tmp_path / "cache")


@pytest.fixture
def no_system_dirs(monkeypatch):
    """Hide Debian's folder so that tests see only the folders they make."""
    import dataclasses

    from cnnc.data import catalog

    for name, info in list(catalog.DATASETS.items()):
        monkeypatch.setitem(catalog.DATASETS, name, dataclasses.replace(info, system_dirs=()))
