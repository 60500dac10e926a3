"""IDX files (the MNIST container format), read and written with every header field checked.

An IDX file is two zero bytes, a type code, the number of dimensions, one big-endian uint32 per
dimension, then the values in big-endian row-major order. Files may be gzip-compressed; that is
detected from the content, not the name, and decompressed as it is read, never beyond what
the header declares. Anything that does not add up (bad magic, unknown type,
truncated data, trailing bytes, a broken gzip stream) raises DataError naming the file, so a
corrupt download can never turn into a silently shorter dataset.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cnnc.errors import DataError
from cnnc.files import open_regular
from cnnc.input_limits import MAX_IDX_BYTES, size_text

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


CHUNK = 2**20  # bytes read at a time; also how much trailing data is looked at


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        part = stream.read(min(n - got, CHUNK))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _read_idx_stream(stream: BinaryIO, path: Path | str, available: int | None) -> np.ndarray:
    """The array in an IDX stream; `available` is the stream's length when known (a plain
    file), None for a decompressing stream, whose length is only found by reading it.

    The header is read first and the values it declares are checked against what is
    available, or against MAX_IDX_BYTES, before anything is allocated; then exactly those bytes
    are read. So a gzip bomb (a small file that decompresses to gigabytes) costs at most what
    its header declares, and trailing data is noticed after reading one chunk of it.
    """
    head = _read_exact(stream, 4)
    if len(head) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(head)} bytes; the header alone "
                        "needs 4)")
    zero0, zero1, code, ndim = head[0], head[1], head[2], head[3]
    if zero0 != 0 or zero1 != 0:
        raise DataError(f"{path}: not an IDX file (magic number {head.hex()}; IDX files "
                        "start with two zero bytes)")
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} in the magic number "
                        f"(known: {known})")
    if ndim == 0:
        raise DataError(f"{path}: the IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    sizes = _read_exact(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({4 + len(sizes)} bytes, the header "
                        f"needs {header} for {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", sizes)
    dtype = IDX_DTYPES[code]
    want = math.prod(dims) * dtype.itemsize  # Python ints: a hostile header cannot overflow
    shape = "x".join(str(d) for d in dims)
    if available is not None:
        have = available - header
        if have < want:
            raise DataError(f"{path}: truncated: the header declares {shape} values of "
                            f"{dtype.name} ({want} bytes) but only {have} bytes follow")
        if have > want:
            raise DataError(f"{path}: {have - want} unexpected bytes after the {shape} values "
                            "the header declares")
    if want > MAX_IDX_BYTES:
        raise DataError(f"{path}: the header declares {shape} values of {dtype.name} "
                        f"({size_text(want)}), more than the {size_text(MAX_IDX_BYTES)} cnnc "
                        "reads from one file")
    buffer = bytearray(want)
    view = memoryview(buffer)
    got = 0
    while got < want:
        n = stream.readinto(view[got:got + CHUNK])
        if not n:
            break
        got += n
    if got < want:
        raise DataError(f"{path}: truncated: the header declares {shape} values of "
                        f"{dtype.name} ({want} bytes) but only {got} bytes follow")
    if available is None:
        extra = len(stream.read(CHUNK))
        if extra:
            more = f"{extra}" if extra < CHUNK else f"at least {extra}"
            raise DataError(f"{path}: {more} unexpected bytes after the {shape} values the "
                            "header declares")
    array = np.frombuffer(buffer, dtype=dtype).reshape(dims)
    native = dtype.newbyteorder("=")
    if native != dtype:
        array = array.byteswap(inplace=True).view(native)
    return array


def parse_idx(data: bytes, path: Path | str = "<bytes>") -> np.ndarray:
    """The array held in the (uncompressed) IDX bytes; errors name `path`."""
    return _read_idx_stream(io.BytesIO(data), path, len(data))


def read_idx(path: str | os.PathLike, *, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip or not, told by its content). `ndim` checks the number of
    dimensions. Only regular files are read; gzip is decompressed as it is read."""
    path = Path(path)
    with open_regular(path, DataError, "IDX file") as raw:
        magic = raw.read(2)
        raw.seek(0)
        try:
            if magic == _GZIP_MAGIC:
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    array = _read_idx_stream(stream, path, None)
            else:
                array = _read_idx_stream(raw, path, os.fstat(raw.fileno()).st_size)
        except EOFError:
            raise DataError(f"{path}: the gzip stream is truncated (the file ends early; "
                            "download or copy it again)") from None
        except (gzip.BadGzipFile, zlib.error) as err:
            raise DataError(f"{path}: the gzip stream is corrupt ({err})") from None
        except OSError as err:
            raise DataError(f"{path}: cannot read the file ({err.strerror or err})") from None
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
