"""Weights on disk and in memory: safetensors files (no pickle) and checks naming every problem.

A weights file holds one array per parameter and moving statistic (names as in the graph, such
as ``conv2d/kernel``) plus metadata naming the format and the network it was saved from.
Files are written atomically (cnnc.atomic), so a crash never leaves a half-written file under
the real name. Training checkpoints are written with the same `save_arrays` and read their
metadata with `header_metadata`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cnnc.atomic import atomic_write
from cnnc.errors import WeightsError
from cnnc.ir.shapes import shape_str

FORMAT = "cnnc-weights"


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                metadata: Mapping[str, str] | None = None) -> None:
    """Write arrays to a safetensors file atomically."""
    import safetensors.numpy

    data = safetensors.numpy.save(
        {name: np.array(a, order="C", copy=True) for name, a in arrays.items()},
        metadata={k: str(v) for k, v in (metadata or {}).items()})
    target = Path(path)
    if not target.parent.is_dir():
        raise WeightsError(f"cannot write '{target}': the folder '{target.parent}' does not exist")
    atomic_write(target, data)


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(arrays, metadata) from a safetensors file; WeightsError if missing, truncated, corrupt."""
    import safetensors.numpy
    from safetensors import SafetensorError

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"no weights file '{p}'", file=str(p))
    try:
        data = p.read_bytes()
        # safe_open returns 0-d arrays as shape (1,); load() keeps them, so read the whole file.
        arrays = {name: np.array(a) for name, a in safetensors.numpy.load(data).items()}
        metadata = header_metadata(data)
    except (SafetensorError, OSError, ValueError, TypeError) as err:
        raise WeightsError(f"'{p}' is not a readable safetensors file (truncated or "
                           f"corrupt?): {err}", file=str(p)) from None
    return arrays, metadata


def header_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file's bytes (u64 little-endian length, then JSON).

    safetensors.numpy.load does not return it, so it is read from the header here.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise TypeError("the header's __metadata__ is not a mapping")
    return {str(k): str(v) for k, v in meta.items()}


def check_arrays(
    expected: Mapping[str, tuple[int, ...]],
    given: Mapping[str, object],
    *,
    what: str = "weights",
    integer: frozenset[str] = frozenset(),
) -> dict[str, np.ndarray]:
    """`given` must have exactly the expected names and shapes, finite real values.

    Names in `integer` must hold integers; every other array must be floating point. The
    message lists every missing, extra and misshaped array at once.
    """
    if not isinstance(given, Mapping):
        raise WeightsError(f"{what} must be a dict of arrays by name, got {type(given).__name__}")
    missing = [n for n in expected if n not in given]
    extra = sorted(n for n in given if n not in expected)
    problems = []
    if missing:
        problems.append("missing " + _listed(missing))
    if extra:
        problems.append("unexpected " + _listed(extra))
    out: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        if name not in given:
            continue
        value = np.asarray(given[name])
        if value.shape != tuple(shape):
            problems.append(f"'{name}' has shape {shape_str(value.shape)}, expected "
                            f"{shape_str(tuple(shape))}")
            continue
        kind = np.integer if name in integer else np.floating
        if not np.issubdtype(value.dtype, kind):
            want = "integers" if name in integer else "floating-point values"
            problems.append(f"'{name}' holds {value.dtype}, expected {want}")
            continue
        if kind is np.floating and not np.isfinite(value).all():
            problems.append(f"'{name}' contains NaN or infinity")
            continue
        out[name] = value
    if problems:
        if len(problems) > LISTED + 2:  # a file for another network: the gist, not a wall
            problems = problems[:LISTED] + [f"{len(problems) - LISTED} more problems"]
        raise WeightsError(f"{what} do not fit: " + "; ".join(problems))
    return out


LISTED = 6  # names listed in one message before "and N more"


def _listed(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def save_weights(path: str | os.PathLike, weights: Mapping[str, np.ndarray],
                 network: str) -> None:
    save_arrays(path, weights, {"format": FORMAT, "network": network})


def load_weights(path: str | os.PathLike, expected: Mapping[str, tuple[int, ...]],
                 network: str) -> dict[str, np.ndarray]:
    """The checked arrays of a weights file for the network `network` with these shapes."""
    arrays, metadata = load_arrays(path)
    what = f"the weights in '{path}'"
    try:
        return check_arrays(expected, arrays, what=what)
    except WeightsError as err:
        saved_from = metadata.get("network")
        if metadata.get("format") != FORMAT:
            err.message += " (the file was not written by cnnc)"
        elif saved_from is not None and saved_from != network:
            err.message = err.message.replace(
                f"{what} do not fit", f"'{path}' holds weights of network '{saved_from}', not "
                f"'{network}', and they do not fit")
        raise
