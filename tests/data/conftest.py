"""Fixtures for dataset tests: no downloads, a private cache, no $CNNC_DATA from the caller."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNC_OFFLINE", "1")
    monkeypatch.setenv("CNNC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNC_DATA", raising=False)
    return tmp_path


@pytest.fixture
def no_system_dirs(monkeypatch):
    """Hide Debian's folder so that tests see only the folders they make."""
    import dataclasses

    import cnnc.data.catalog as catalog

    for name, info in list(catalog.DATASETS.items()):
        monkeypatch.setitem(catalog.DATASETS, name, dataclasses.replace(info, system_dirs=()))
