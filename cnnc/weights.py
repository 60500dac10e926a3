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
from cnnc.files import check_regular
from cnnc.input_limits import MAX_SAFETENSORS_HEADER
from cnnc.ir.shapes import shape_str

FORMAT = "cnnc-weights"
# Trained weights are rarely above 1e3; a weight over 1e18 squares to more than float32 holds
# (3.4e38), so its model can only predict infinities and NaN: refused when weights are set.
MAX_WEIGHT = 1e18


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                metadata: Mapping[str, str] | None = None) -> None:
    """Write arrays to a safetensors file atomically."""
    import safetensors.numpy

    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise WeightsError(f"a weights file is named by a path, got {path!r}")
    target = Path(path)
    if target.is_dir():
        raise WeightsError(f"cannot write '{target}': it is a directory",
                           hint="name a file in it, e.g. weights.safetensors")
    if not target.parent.is_dir():
        raise WeightsError(f"cannot write '{target}': the folder '{target.parent}' does not exist")
    data = safetensors.numpy.save(
        {name: np.array(a, order="C", copy=True) for name, a in arrays.items()},
        metadata={k: str(v) for k, v in (metadata or {}).items()})
    atomic_write(target, data)


# The safetensors dtypes NumPy can hold; BF16 and the FP8 kinds have no NumPy type.
READABLE_DTYPES = frozenset({"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64",
                             "F16", "F32", "F64"})


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(arrays, metadata) from a safetensors file; WeightsError if missing, truncated, corrupt.

    The header is read and checked first (its size, JSON, the dtypes, that the data it
    declares is in the file), so a file that is not a weights file is refused before its data
    is read, and a dtype NumPy has no type for (BF16) is named rather than failing inside.
    """
    import safetensors.numpy
    from safetensors import SafetensorError

    p = Path(path)
    if not p.exists():
        raise WeightsError(f"no weights file '{p}'", file=str(p))
    check_regular(p, WeightsError, "weights file")
    unreadable = f"'{p}' is not a readable safetensors file (truncated or corrupt?)"
    try:
        with p.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 2 <= length <= min(MAX_SAFETENSORS_HEADER, size - 8):
                raise ValueError(f"its header length is {length}")
            header = json.loads(f.read(length))
            _check_header(header, size - 8 - length, p)
            f.seek(0)
            data = f.read()
        # safe_open returns 0-d arrays as shape (1,); load() keeps them, so read the whole file.
        arrays = {name: np.array(a) for name, a in safetensors.numpy.load(data).items()}
        metadata = header_metadata(data)
    except (SafetensorError, OSError, ValueError, TypeError, KeyError) as err:
        raise WeightsError(f"{unreadable}: {err}", file=str(p)) from None
    return arrays, metadata


def _check_header(header: object, data_bytes: int, path: Path) -> None:
    """Raise TypeError or ValueError (the caller's 'not readable'), or WeightsError (a dtype
    NumPy cannot hold), for a header that does not describe the file's data."""
    if not isinstance(header, dict):
        raise TypeError("the header is not a JSON object")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise TypeError(f"the header's entry for '{name}' is not an object")
        dtype = entry.get("dtype")
        if dtype not in READABLE_DTYPES:
            raise WeightsError(
                f"'{path}': '{name}' is stored as {dtype}, which cnnc cannot read",
                hint="save the weights as float32 (NumPy has no bfloat16 or float8 type)")
        offsets = entry.get("data_offsets")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
            raise ValueError(f"the data of '{name}' lies outside the file")


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
    max_abs: float | None = None,
) -> dict[str, np.ndarray]:
    """`given` must have exactly the expected names and shapes, finite real values.

    Names in `integer` must hold integers; every other array must be floating point, with no
    magnitude over `max_abs` if given. The message lists every missing, extra and misshaped
    array at once.
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
        if kind is np.floating and max_abs is not None and value.size \
                and float(np.abs(value).max()) > max_abs:
            problems.append(f"'{name}' holds {float(np.abs(value).max()):g} in magnitude, "
                            f"more than the {max_abs:g} a weight may be")
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
        return check_arrays(expected, arrays, what=what, max_abs=MAX_WEIGHT)
    except WeightsError as err:
        saved_from = metadata.get("network")
        if metadata.get("format") != FORMAT:
            err.message += " (the file was not written by cnnc)"
        elif saved_from is not None and saved_from != network:
            err.message = err.message.replace(
                f"{what} do not fit", f"'{path}' holds weights of network '{saved_from}', not "
                f"'{network}', and they do not fit")
        raise
