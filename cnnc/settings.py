"""Every environment variable cnnc reads, read here and nowhere else.

CNNC_DATA        a folder holding dataset IDX files (searched before the user cache)
CNNC_CACHE_DIR   where datasets and compiled kernels are cached (default ~/.cache/cnnc)
CNNC_DEVICE      default OpenCL device selector ('gpu', 'cpu', 'P:D' or part of a name)
CNNC_DEBUG       '1' verifies the graph after every pass and names the pass that broke it
CNNC_OFFLINE     '1' never downloads datasets (the test suite and CI set it)
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path | None:
    value = os.environ.get("CNNC_DATA")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    value = os.environ.get("CNNC_CACHE_DIR")
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "cnnc"


def device_selector() -> str | None:
    return os.environ.get("CNNC_DEVICE") or None


def _flag(name: str) -> bool:
    """A yes/no variable: set to anything but '', 0, false or no means yes."""
    return os.environ.get(name, "") not in ("", "0", "false", "no")


def debug() -> bool:
    return _flag("CNNC_DEBUG")


def offline() -> bool:
    """True when datasets must not be downloaded."""
    return _flag("CNNC_OFFLINE")
