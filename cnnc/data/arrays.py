"""NumPy datasets for training: a .npz in Keras' `load_data` layout, or a folder of .npy files.

Both hold x_train, y_train, x_test and y_test (a .npz as its four members, a folder as
x_train.npy, ...). Images are (N, H, W) or (N, H, W, C), uint8 (scaled by 1/255 like the IDX
datasets) or floats already in [0, 1] (other integers only for a spec that rescales its input:
cnnc/inputs.py's contract); labels are (N,) or (N, 1) class indices (Keras' CIFAR
arrays are (N, 1)). An optional `class_names` member (an array of strings) names the classes;
otherwise they are "0", "1", ... up to the largest label. Every array's header is checked
against the file and cnnc.input_limits.MAX_NPY_BYTES before its data is read, and no member is
ever unpickled.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cnnc.errors import DataError, InputError
from cnnc.files import open_regular
from cnnc.input_limits import MAX_NPY_BYTES, size_text
from cnnc.inputs import check_not_empty, file_pixels

KEYS = ("x_train", "y_train", "x_test", "y_test")
CLASS_NAMES_KEY = "class_names"


def read_npy_stream(f: BinaryIO, size: int, label: str) -> np.ndarray:
    """The array of a .npy stream of `size` bytes; DataError naming `label` when its header
    lies about the data, declares more than MAX_NPY_BYTES, or holds Python objects."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        read_header = (fmt.read_array_header_1_0 if version == (1, 0)
                       else fmt.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject:
            raise ValueError("it holds Python objects, which cnnc does not load")
        want = math.prod(shape) * dtype.itemsize
        have = size - f.tell()
        if want > MAX_NPY_BYTES:
            raise ValueError(f"the array is {size_text(want)}, more than the "
                             f"{size_text(MAX_NPY_BYTES)} cnnc reads")
        if want > have:
            raise ValueError(f"truncated: the header declares {shape} values of {dtype} "
                             f"({size_text(want)}) but only {size_text(have)} follow")
        data = f.read(want)
        if len(data) != want:
            raise ValueError("truncated")
        array = np.frombuffer(data, dtype=dtype)
        array = array.reshape(shape[::-1]).T if fortran else array.reshape(shape)
        return array
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{label}: not a readable .npy array ({err})") from None


def _read_npy_file(path: Path) -> np.ndarray:
    with open_regular(path, DataError, ".npy file") as f:
        return read_npy_stream(f, path.stat().st_size, str(path))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every member of a .npz (each an .npy), by name without '.npy'."""
    try:
        with open_regular(path, DataError, ".npz file") as raw, zipfile.ZipFile(raw) as z:
            out = {}
            for info in z.infolist():
                name = info.filename.removesuffix(".npy")
                with z.open(info) as member:
                    out[name] = read_npy_stream(member, info.file_size, f"{path}[{name}]")
            return out
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataError(f"{path}: not a readable .npz archive ({err})") from None


def npy_folder_files(folder: Path) -> dict[str, Path]:
    """The .npy files of a NumPy dataset folder by key (empty when it is not one)."""
    return {k: folder / f"{k}.npy" for k in (*KEYS, CLASS_NAMES_KEY)
            if (folder / f"{k}.npy").is_file()}


def load_npy_folder(folder: Path) -> tuple[dict[str, np.ndarray], str]:
    files = npy_folder_files(folder)
    return {k: _read_npy_file(p) for k, p in files.items()}, f"{folder}/"


def check_arrays(arrays: dict[str, np.ndarray], where: str, member: str = "member",
                 raw: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(x_train, y_train, x_test, y_test, class names) with every refusal a user can meet
    named: a missing key, mismatched lengths, bad pixel values, labels that are not classes.
    raw: the spec rescales its input, so integer pixels of any dtype are taken (cnnc/inputs.py)."""
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise DataError(f"{where}: no {member} {', '.join(missing)}; it has "
                        f"{', '.join(sorted(arrays)) or 'none'}",
                        hint="a NumPy dataset holds x_train, y_train, x_test and y_test "
                             "(Keras' load_data layout)")
    names = None
    if CLASS_NAMES_KEY in arrays:
        given = arrays[CLASS_NAMES_KEY]
        if given.ndim != 1 or given.dtype.kind not in "US" or given.size == 0:
            raise DataError(f"{where}: {CLASS_NAMES_KEY} must be a 1-D array of strings, got "
                            f"{given.dtype} of shape {given.shape}")
        names = tuple(str(v) if given.dtype.kind == "U" else v.decode("utf-8", "replace")
                      for v in given.tolist())
    out = []
    for part in ("train", "test"):
        x = _check_images(arrays[f"x_{part}"], f"{where}: x_{part}", raw)
        y = _check_labels(arrays[f"y_{part}"], f"{where}: y_{part}", names)
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{where}: x_{part} holds {x.shape[0]} images but y_{part} holds "
                            f"{y.shape[0]} labels; they must have one label per image")
        out += [x, y]
    if out[0].shape[1:] != out[2].shape[1:]:
        raise DataError(f"{where}: x_train holds {_dims(out[0])} images but x_test holds "
                        f"{_dims(out[2])} images")
    if names is None:
        top = max(int(out[1].max()), int(out[3].max()))
        names = tuple(str(i) for i in range(top + 1))
    return out[0], out[1], out[2], out[3], names


def _dims(x: np.ndarray) -> str:
    return "x".join(str(d) for d in x.shape[1:])


def _check_images(x: np.ndarray, what: str, raw: bool = False) -> np.ndarray:
    if x.ndim not in (3, 4):
        raise DataError(f"{what}: expected images (N, H, W) or (N, H, W, C), got an array of "
                        f"shape {x.shape}")
    try:
        check_not_empty(x, what)
        return file_pixels(x, what, raw)  # the one input contract (cnnc/inputs.py)
    except InputError as err:
        raise DataError(err.message, hint=err.hint) from None


def _check_labels(y: np.ndarray, what: str, names: tuple[str, ...] | None) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # Keras' CIFAR labels are (N, 1)
    if y.ndim != 1:
        raise DataError(f"{what}: expected class indices (N,) or (N, 1), got an array of shape "
                        f"{y.shape}")
    if y.dtype.kind not in "iu":
        raise DataError(f"{what}: labels must be integer class indices, got {y.dtype}")
    low = np.flatnonzero(y < 0)
    if low.size:
        raise DataError(f"{what}: label {int(y[low[0]])} at index {int(low[0])} is negative "
                        f"({low.size} such labels)")
    if names is not None:
        high = np.flatnonzero(y >= len(names))
        if high.size:
            raise DataError(f"{what}: label {int(y[high[0]])} at index {int(high[0])} is outside "
                            f"0..{len(names) - 1}, the {len(names)} classes of {CLASS_NAMES_KEY} "
                            f"({high.size} such labels)")
    return y.astype(np.int32)


def fit_channels(images: np.ndarray, channels: int, where: str) -> np.ndarray:
    """uint8 or float images (N, H, W[, C]) with `channels` channels: grayscale repeated to RGB,
    RGB to grayscale (N, H, W) with ITU-R 601 luma (Pillow's "L"), anything else refused."""
    have = 1 if images.ndim == 3 else images.shape[-1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        gray = images if images.ndim == 3 else images[..., 0]
        return np.repeat(gray[..., None], 3, axis=-1)
    if have == 3 and channels == 1:
        if images.dtype == np.uint8:
            # Pillow's own integer form of ITU-R 601 (libImaging/Convert.c, L24), so that arrays
            # and image files of the same pixels agree exactly.
            rgb = images.astype(np.uint32)
            luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471
                    + 0x8000) >> 16
            return luma.astype(np.uint8)
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return images.astype(np.float32) @ weights
    raise DataError(f"{where}: the images have {have} channels and the spec's input takes "
                    f"{channels}", hint="cnnc converts between 1 (grayscale) and 3 (RGB) only")
