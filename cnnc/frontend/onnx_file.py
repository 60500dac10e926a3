"""ONNX front end, stage 1: an .onnx file read defensively into protobuf messages and arrays.

A model file comes from anywhere, so nothing in it is trusted: the protobuf is parsed from bytes
(never with `onnx.load`, which follows external-data paths by itself), every tensor's declared
size is checked against the bytes it really holds before anything is allocated, and tensors kept
in external files are read only from files inside the model's own folder.
"""

from __future__ import annotations

import os
from math import prod
from pathlib import Path
from typing import Any

import numpy as np

from cnnc.errors import CnncError, SpecError

MAX_MODEL_BYTES = 2**31 - 1  # protobuf's own limit on one message
MAX_TENSOR_ELEMENTS = 2**28  # 1 GiB of float32: far beyond any CNN layer cnnc compiles
MAX_EXTERNAL_BYTES = 2**32  # all external data of one model together

INSTALL_HINT = "install it with: pip install 'cnnc[onnx]' (or pip install onnx)"


class OnnxFileError(SpecError):
    """An .onnx file that cannot be read: not protobuf, truncated, inconsistent or unsafe."""


def require_onnx() -> Any:
    """The `onnx` module, or a CnncError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise CnncError("reading and writing ONNX models needs the 'onnx' package",
                        hint=INSTALL_HINT) from None
    return onnx


def read_model(path: str | os.PathLike) -> Any:
    """The ModelProto in `path`; OnnxFileError when it is missing, too large or not ONNX."""
    onnx = require_onnx()
    from google.protobuf.message import DecodeError

    label = os.fspath(path)
    p = Path(label)
    if not p.is_file():
        raise OnnxFileError(f"no such file: {label}" if not p.exists() else
                            f"{label} is not a file")
    size = p.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise OnnxFileError(f"the file is {size:,} bytes, more than a protobuf message can hold",
                            file=label)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise OnnxFileError(f"cannot read the file: {err.strerror}", file=label) from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as err:
        raise OnnxFileError(f"not an ONNX model: the protobuf does not parse (truncated or "
                            f"corrupt?): {err}", file=label) from None
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxFileError("not an ONNX model: it holds no graph nodes (truncated, or not an "
                            "ONNX file?)", file=label)
    return model


# ---------------------------------------------------------------- tensors


def _dtypes() -> dict[int, np.dtype]:
    from onnx import TensorProto as T

    return {
        T.FLOAT: np.dtype("<f4"), T.DOUBLE: np.dtype("<f8"), T.FLOAT16: np.dtype("<f2"),
        T.INT64: np.dtype("<i8"), T.INT32: np.dtype("<i4"), T.INT16: np.dtype("<i2"),
        T.INT8: np.dtype("i1"), T.UINT8: np.dtype("u1"), T.BOOL: np.dtype("?"),
    }


def dtype_name(data_type: int) -> str:
    from onnx import TensorProto

    try:
        return TensorProto.DataType.Name(data_type).lower()
    except ValueError:
        return f"type {data_type}"


def checked_numel(dims: Any, what: str) -> int:
    """The element count of declared dims, refusing negative or absurd sizes before any
    allocation."""
    dims = list(dims)
    if any(d < 0 for d in dims):
        raise OnnxFileError(f"{what} declares a negative dimension: {tuple(dims)}")
    numel = prod(dims)
    if numel > MAX_TENSOR_ELEMENTS:
        raise OnnxFileError(f"{what} declares {numel:,} elements (shape {tuple(dims)}), more "
                            f"than cnnc reads ({MAX_TENSOR_ELEMENTS:,})")
    return numel


class TensorReader:
    """Turns TensorProtos of one model into NumPy arrays; external data comes only from files
    inside `folder` (None: a model not read from a file, which may have no external data)."""

    def __init__(self, folder: Path | None, file: str | None):
        self.folder = folder.resolve() if folder is not None else None
        self.file = file
        self.external_bytes = 0

    def error(self, message: str) -> OnnxFileError:
        return OnnxFileError(message, file=self.file)

    def array(self, t: Any, what: str | None = None) -> np.ndarray:
        from onnx import TensorProto as T

        what = what or f"tensor '{t.name}'"
        dtype = _dtypes().get(t.data_type)
        if dtype is None:
            raise self.error(f"{what} holds {dtype_name(t.data_type)} values, which cnnc does "
                             "not read")
        try:
            numel = checked_numel(t.dims, what)
        except OnnxFileError as err:
            raise self.error(err.message) from None
        shape = tuple(int(d) for d in t.dims)
        if t.data_location == T.EXTERNAL:
            raw = self._external(t, what, numel * dtype.itemsize)
        elif t.HasField("raw_data"):
            raw = t.raw_data
        else:
            return self._typed(t, what, dtype, numel, shape)
        if len(raw) != numel * dtype.itemsize:
            raise self.error(f"{what} declares shape {shape} ({numel:,} {dtype_name(t.data_type)}"
                             f" values, {numel * dtype.itemsize:,} bytes) but holds "
                             f"{len(raw):,} bytes")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))

    def _typed(self, t: Any, what: str, dtype: np.dtype, numel: int,
               shape: tuple[int, ...]) -> np.ndarray:
        from onnx import TensorProto as T

        if t.data_type in (T.FLOAT,):
            values: Any = t.float_data
        elif t.data_type == T.DOUBLE:
            values = t.double_data
        elif t.data_type == T.INT64:
            values = t.int64_data
        else:  # int32_data also carries int16, int8, uint8, bool and float16 (as bits)
            values = t.int32_data
        if len(values) != numel:
            raise self.error(f"{what} declares shape {shape} ({numel:,} values) but holds "
                             f"{len(values):,}")
        if t.data_type == T.FLOAT16:
            return np.array(values, dtype=np.uint16).view(np.float16).reshape(shape)
        return np.array(values, dtype=dtype.newbyteorder("=")).reshape(shape)

    def _external(self, t: Any, what: str, expected: int) -> bytes:
        entries = {e.key: e.value for e in t.external_data}
        location = entries.get("location", "")
        if self.folder is None:
            raise self.error(f"{what} keeps its data in an external file, and this model was "
                             "not read from a file")
        if not location or "\x00" in location:
            raise self.error(f"{what} has external data without a valid location")
        rel = Path(location)
        if rel.is_absolute() or rel.drive or location.startswith(("/", "\\")):
            raise self.error(f"{what}: external data location '{location}' is an absolute "
                             "path; cnnc reads external data only from the model's folder")
        target = (self.folder / rel).resolve()
        if not target.is_relative_to(self.folder):
            raise self.error(f"{what}: external data location '{location}' points outside the "
                             f"model's folder ({self.folder})")
        try:
            offset = int(entries.get("offset", "0"))
            length = int(entries["length"]) if "length" in entries else expected
        except ValueError:
            raise self.error(f"{what}: external data offset or length is not an integer") \
                from None
        if offset < 0 or length != expected:
            raise self.error(f"{what}: external data has offset {offset} and length {length}; "
                             f"the tensor's shape needs {expected:,} bytes")
        if not target.is_file():
            raise self.error(f"{what}: external data file '{location}' does not exist")
        if offset + expected > target.stat().st_size:
            raise self.error(f"{what}: external data file '{location}' is too short for "
                             f"{expected:,} bytes at offset {offset}")
        self.external_bytes += expected
        if self.external_bytes > MAX_EXTERNAL_BYTES:
            raise self.error("the model's external data exceeds "
                             f"{MAX_EXTERNAL_BYTES:,} bytes")
        with open(target, "rb") as f:
            f.seek(offset)
            return f.read(expected)


__all__ = [
    "MAX_TENSOR_ELEMENTS", "OnnxFileError", "TensorReader", "checked_numel", "dtype_name",
    "read_model", "require_onnx",
]
