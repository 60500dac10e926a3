"""IDX reading and writing: round trips, and every kind of broken file named in its error."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from cnnc.data.idx import idx_bytes, parse_idx, read_idx, write_idx
from cnnc.errors import DataError


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip(tmp_path, dtype, name):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_header_layout_matches_the_format():
    data = idx_bytes(np.array([[1, 2, 3]], dtype=np.uint8))
    assert data == bytes([0, 0, 0x08, 2]) + struct.pack(">II", 1, 3) + bytes([1, 2, 3])
    data = idx_bytes(np.array([258], dtype=np.int32))
    assert data[2] == 0x0C and data[-4:] == b"\x00\x00\x01\x02"  # big-endian values


def test_gzip_is_detected_from_content_not_name(tmp_path):
    path = tmp_path / "labels-without-suffix"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(5, dtype=np.uint8))))
    np.testing.assert_array_equal(read_idx(path), np.arange(5))


def _error(data: bytes, tmp_path, name="bad-idx1-ubyte") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_wrong_magic(tmp_path):
    assert "magic number 01020801" in _error(b"\x01\x02\x08\x01" + b"\0" * 8, tmp_path)


def test_unknown_type_code(tmp_path):
    assert "unknown IDX type code 0x07" in _error(b"\x00\x00\x07\x01\x00\x00\x00\x01x",
                                                   tmp_path)


def test_too_short_for_a_header(tmp_path):
    assert "only 2 bytes" in _error(b"\x00\x00", tmp_path)
    assert "truncated IDX header" in _error(b"\x00\x00\x08\x03\x00\x00\x00\x01", tmp_path)


def test_truncated_data(tmp_path):
    full = idx_bytes(np.zeros((10, 4, 4), np.uint8))
    msg = _error(full[:-7], tmp_path)
    assert "truncated" in msg and "10x4x4" in msg and "153 bytes follow" in msg


def test_trailing_bytes(tmp_path):
    assert "3 unexpected bytes" in _error(idx_bytes(np.zeros(4, np.uint8)) + b"abc", tmp_path)


def test_truncated_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(5000, dtype=np.int32)))
    assert "gzip stream is truncated" in _error(packed[: len(packed) // 2], tmp_path)


def test_corrupt_gzip(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(5000, dtype=np.int32))))
    packed[20:40] = b"\xff" * 20
    assert "gzip stream is corrupt" in _error(bytes(packed), tmp_path)


def test_expected_dimensions(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="expected 3 dimensions, the file has 2"):
        read_idx(path, ndim=3)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nope.gz")


def test_hostile_header_cannot_allocate(tmp_path):
    # 4 G x 4 G x 4 G values declared, 4 bytes present: refused by arithmetic, not by memory.
    data = bytes([0, 0, 8, 3]) + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"abcd"
    assert "truncated" in _error(data, tmp_path)


def test_unsupported_dtype_is_refused():
    with pytest.raises(DataError, match="cannot write uint16"):
        idx_bytes(np.zeros(3, np.uint16))


def test_parse_idx_names_its_source():
    with pytest.raises(DataError, match="^somewhere: "):
        parse_idx(b"\x00", "somewhere")
