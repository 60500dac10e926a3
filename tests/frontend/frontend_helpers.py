"""Helpers for the front-end tests: where the example specs are, and catching located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnc.errors import CnncError

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
SPEC_SUFFIXES = (".cnn", ".yaml", ".yml")


def spec_files() -> list[Path]:
    """Every example spec in the checkout's specs/ folder, found afresh at collection."""
    return sorted(p for p in SPECS.iterdir() if p.suffix in SPEC_SUFFIXES)


def error_of(fn, *args, **kwargs) -> CnncError:
    """The CnncError that fn(*args, **kwargs) raises (fails the test if it raises none)."""
    with pytest.raises(CnncError) as info:
        fn(*args, **kwargs)
    return info.value
