"""Where the OpenCL kernel sources are: a leaf of the OpenCL backend, read by program building,
driver qualification and the tuning cache's keys."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from cnnc.errors import DeviceError


def kernel_dir() -> Path:
    """The folder holding the .cl files: the installed package's, else the checkout's."""
    try:
        found = importlib.resources.files("cnnc.kernels")
        path = Path(str(found))
        if path.is_dir() and any(path.glob("*.cl")):
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    checkout = Path(__file__).resolve().parents[3] / "kernels"
    if checkout.is_dir():
        return checkout
    raise DeviceError(
        "the OpenCL kernel sources (kernels/*.cl) are missing from this install",
        hint="reinstall cnnc",
    )
