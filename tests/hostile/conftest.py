"""Fixtures for the hostile-input tests: the bounded-run server, and a tiny trainable setup."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from bounded import BoundedCnnc

# The training tests' tiny spec and its synthetic dataset (tests/train/training_spec.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))


@pytest.fixture(scope="session")
def bounded():
    """Runs `cnnc` commands under a memory cap and a time limit (see bounded.py)."""
    with BoundedCnnc() as server:
        yield server


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No downloads and no $CNNC_DATA: datasets only where a test names them. The kernel cache
    stays the caller's, so that the OpenCL tests here do not rebuild every kernel."""
    monkeypatch.setenv("CNNC_OFFLINE", "1")
    monkeypatch.delenv("CNNC_DATA", raising=False)
