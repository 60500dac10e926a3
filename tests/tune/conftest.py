"""Fixtures for the tuner's tests: a usable OpenCL device, small one-node graphs, and a cache
folder whose built programs are the user's (so tests that run `cnnc tune` in a subprocess do not
rebuild every kernel) but whose tuning file is the test's own."""

from __future__ import annotations

import pytest

from cnnc import settings
from cnnc.errors import DeviceError


@pytest.fixture(scope="session")
def device():
    from cnnc.backends.opencl.device import select_device

    try:
        return select_device(settings.device_selector())
    except DeviceError as err:
        pytest.skip(f"no usable OpenCL device: {err}")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """CNNC_CACHE_DIR for the test, sharing the built programs of the usual cache."""
    folder = tmp_path / "cache"
    folder.mkdir()
    programs = settings.cache_dir() / "opencl"
    programs.mkdir(parents=True, exist_ok=True)
    (folder / "opencl").symlink_to(programs, target_is_directory=True)
    monkeypatch.setenv("CNNC_CACHE_DIR", str(folder))
    monkeypatch.setenv("CNNC_TUNE", "1")
    return folder
