"""Test isolation for anything that looks for datasets: no downloads, a private cache.

The data and training suites call `isolate_datasets` from an autouse fixture, so that no test
reaches the network, reads the user's cache or follows the caller's $CNNC_DATA.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


def isolate_datasets(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """Downloads off, `cache` as the user cache, $CNNC_DATA unset (undone after the test)."""
    monkeypatch.setenv("CNNC_OFFLINE", "1")
    monkeypatch.setenv("CNNC_CACHE_DIR", str(cache))
    monkeypatch.delenv("CNNC_DATA", raising=False)
