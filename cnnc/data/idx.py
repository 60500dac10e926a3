"""IDX files (the MNIST container format), read and written with every header field checked.

An IDX file is two zero bytes, a type code, the number of dimensions, one big-endian uint32 per
dimension, then the values in big-endian row-major order. Files may be gzip-compressed; that is
detected from the content, not the name. Anything that does not add up (bad magic, unknown type,
truncated data, trailing bytes, a broken gzip stream) raises DataError naming the file, so a
corrupt download can never turn into a silently shorter dataset.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnc.errors import DataError

# Type codes from the format's definition (Y. LeCun's MNIST page); multi-byte values big-endian.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF = {dt.newbyteorder("=").str[1:]: code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _raw_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror or err})") from None
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except EOFError:
            raise DataError(f"{path}: the gzip stream is truncated (the file ends early; "
                            "download or copy it again)") from None
        except (gzip.BadGzipFile, zlib.error, OSError) as err:
            raise DataError(f"{path}: the gzip stream is corrupt ({err})") from None
    return data


def parse_idx(data: bytes, path: Path | str = "<bytes>") -> np.ndarray:
    """The array held in the (uncompressed) IDX bytes; errors name `path`."""
    if len(data) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(data)} bytes; the header alone "
                        "needs 4)")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise DataError(f"{path}: not an IDX file (magic number {data[:4].hex()}; IDX files "
                        "start with two zero bytes)")
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} in the magic number "
                        f"(known: {known})")
    if ndim == 0:
        raise DataError(f"{path}: the IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, the header needs "
                        f"{header} for {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    want = math.prod(dims) * dtype.itemsize  # Python ints: a hostile header cannot overflow
    have = len(data) - header
    shape = "x".join(str(d) for d in dims)
    if have < want:
        raise DataError(f"{path}: truncated: the header declares {shape} values of "
                        f"{dtype.name} ({want} bytes) but only {have} bytes follow")
    if have > want:
        raise DataError(f"{path}: {have - want} unexpected bytes after the {shape} values the "
                        "header declares")
    array = np.frombuffer(data, dtype=dtype, count=want // dtype.itemsize, offset=header)
    return array.reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike, *, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip or not). `ndim` checks the number of dimensions."""
    path = Path(path)
    array = parse_idx(_raw_bytes(path), path)
    if ndim is not None and array.ndim != ndim:
        raise DataError(f"{path}: expected {ndim} dimensions, the file has {array.ndim} "
                        f"(shape {'x'.join(map(str, array.shape))})")
    return array


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of an array of a supported dtype (uint8, int8, int16, int32, float32/64)."""
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str[1:]
    if key not in _CODE_OF:
        raise DataError(f"cannot write {array.dtype} to IDX (supported: uint8, int8, int16, "
                        "int32, float32, float64)")
    if array.ndim == 0 or array.ndim > 255:
        raise DataError(f"cannot write a {array.ndim}-dimensional array to IDX")
    code = _CODE_OF[key]
    head = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write `array` as IDX; gzip-compressed when `compress` (default: the name ends in .gz)."""
    path = Path(path)
    data = idx_bytes(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        # mtime=0 keeps the bytes reproducible, so checksums of written files are stable.
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
