"""A restricted unpickler for CIFAR's python archives: data only, no code ever run.

A pickle is a program: its GLOBAL/STACK_GLOBAL opcodes import any callable and REDUCE calls it,
so `pickle.load` on a downloaded file runs whatever the file says (os.system, say). This reader
resolves no global to anything real. The CIFAR batches are dicts of bytes keys to lists of
ints, lists of bytes/str and one uint8 array, and NumPy pickles an array as
`numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')` followed by a BUILD with
(version, shape, dtype, fortran, raw bytes), its dtype as `numpy.dtype('u1', 0, 1)` plus a BUILD.
Exactly those three names are admitted, each resolved to an inert stand-in here that only
records its arguments; after loading, the stand-ins are checked (uint8, C order, bytes of the
declared size) and turned into arrays with np.frombuffer. Every other global is refused before
anything is called, and the result must be built of dicts, lists, tuples, str, bytes, ints,
floats, None and those arrays alone.
"""

from __future__ import annotations

import io
import math
import pickle
from typing import Any

import numpy as np

from cnnc.errors import DataError

# NumPy 1 pickles under numpy.core, NumPy 2 under numpy._core: the same function.
_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}
_NDARRAY = ("numpy", "ndarray")
_DTYPE = ("numpy", "dtype")
_UINT8 = ("u1", "|u1", "uint8")
# Python 3 writes bytes at protocol 2 as _codecs.encode(text, 'latin1'): admitted as a stand-in.
_ENCODE = ("_codecs", "encode")
MAX_ARRAY_BYTES = 2**31  # far above CIFAR's 30 MB batches


class _NdarrayName:
    """Stands for numpy.ndarray as _reconstruct's first argument; never instantiated."""

    def __new__(cls, *args, **kwargs):
        raise pickle.UnpicklingError("numpy.ndarray may only appear as _reconstruct's argument")


class _Dtype:
    """Stands for numpy.dtype('u1', ...); BUILD gives it the dtype's state, which is checked."""

    def __init__(self, name: Any, align: Any = 0, copy: Any = 1):
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        if text not in _UINT8:
            raise pickle.UnpicklingError(f"an array of dtype {text!r}; only uint8 is admitted")
        self.name = "u1"

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or not state or not isinstance(state[0], int):
            raise pickle.UnpicklingError("a dtype with an unexpected state")


class _Array:
    """Stands for a reconstructed ndarray; BUILD gives it (version, shape, dtype, fortran, data)."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise pickle.UnpicklingError("an array with an unexpected state")
        _, shape, dtype, fortran, data = state
        if (not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(dtype, _Dtype)):
            raise pickle.UnpicklingError("an array with an unexpected shape or dtype")
        if fortran is not False:
            raise pickle.UnpicklingError("a Fortran-ordered array")
        if isinstance(data, str):  # Python 2 str read with encoding='latin1'
            data = data.encode("latin1")
        n = math.prod(shape)
        if not isinstance(data, bytes) or len(data) != n or n > MAX_ARRAY_BYTES:
            raise pickle.UnpicklingError(f"an array of shape {shape} whose data is not "
                                         f"{n} bytes")
        self.array = np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _Array:
    if cls is not _NdarrayName:
        raise pickle.UnpicklingError("_reconstruct of something other than numpy.ndarray")
    return _Array()


def _latin1(text: Any, encoding: Any) -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", b"latin1"):
        raise pickle.UnpicklingError("_codecs.encode other than of text to latin1")
    return text.encode("latin1")


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _RECONSTRUCT:
            return _reconstruct
        if (module, name) == _NDARRAY:
            return _NdarrayName
        if (module, name) == _DTYPE:
            return _Dtype
        if (module, name) == _ENCODE:
            return _latin1
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a data file has no "
                                     "need of (only NumPy's uint8 arrays are admitted)")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("it uses persistent ids")


def _plain(value: Any, depth: int = 0) -> Any:
    """`value` with stand-ins turned into arrays; refuses anything but plain data."""
    if depth > 32:
        raise pickle.UnpicklingError("nested more than 32 deep")
    if value is None or isinstance(value, (str, bytes, int, float, bool)):
        return value
    if isinstance(value, _Array):
        if value.array is None:
            raise pickle.UnpicklingError("an array without its data")
        return value.array
    if isinstance(value, dict):
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    raise pickle.UnpicklingError(f"it holds a {type(value).__name__}, not plain data")


def load_data_pickle(data: bytes, label: str) -> Any:
    """The plain data a CIFAR python pickle holds (bytes keys and strings kept as bytes, as
    CIFAR's own instructions load it with encoding='bytes'); DataError naming `label` for
    anything else, with nothing of the file's run."""
    try:
        value = _Unpickler(io.BytesIO(data), encoding="bytes").load()
        return _plain(value)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, UnicodeDecodeError, MemoryError, RecursionError) as err:
        raise DataError(f"{label}: refused as a CIFAR python batch: {err}",
                        hint="cnnc reads CIFAR's pickles with a restricted unpickler that "
                             "admits plain data and uint8 arrays only") from None
