"""Datasets from the user's own files: which reader a path needs, and its data as a Dataset.

A path named in `train.dataset` or with `--data` is read by what it is:
  FILE.npz                     NumPy arrays in Keras' load_data layout (cnnc/data/arrays.py)
  FOLDER with x_train.npy ...  the same as separate .npy files
  FILE.tar.gz / .tgz / .tar    a CIFAR-10 or CIFAR-100 archive, binary or python (cifar.py)
  FOLDER with CIFAR's files    the same, unpacked
  FOLDER of class folders      an image folder (cnnc/data/folder.py)
A folder holding MNIST-family IDX files keeps today's meaning (cnnc/data/locate.py); it is
tried first. Relative paths are taken from the current folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnc.data.arrays import (
    check_arrays,
    fit_channels,
    load_npy_folder,
    npy_folder_files,
    read_npz,
)
from cnnc.data.catalog import DatasetInfo
from cnnc.data.cifar import folder_layout, is_cifar_archive, load_cifar
from cnnc.data.folder import is_image_folder, load_image_folder, shown
from cnnc.data.locate import FoundFiles
from cnnc.errors import DataError

FORMATS = ("an image folder (one subfolder of images per class), a .npz or a folder of .npy "
           "files (x_train, y_train, x_test, y_test), a CIFAR-10/100 archive (.tar.gz) or its "
           "unpacked folder, or a folder of MNIST-family IDX files")


@dataclass(frozen=True)
class SourceData:
    """What a source holds: (images, labels) per part; cnnc/data/dataset.py makes a Dataset."""

    info: DatasetInfo
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray] | None
    found: FoundFiles
    notes: tuple[str, ...]
    skipped: tuple[str, ...]


def is_source_path(path: Path) -> bool:
    """True when `path` holds a dataset of the kinds above other than IDX files."""
    if path.is_file():
        return path.suffix.lower() == ".npz" or is_cifar_archive(path)
    if not path.is_dir():
        return False
    return bool(npy_folder_files(path)) or folder_layout(path) is not None \
        or is_image_folder(path)


def load_source(path: Path, input_shape: Sequence[int] | None, *, image_fit: str = "resize",
                bad_images: str = "refuse", log: Callable[[str], None] | None = None,
                origin: str = "--data", stream: bool = False, raw: bool = False) -> SourceData:
    """The dataset at `path` (see the module doc) for inputs of `input_shape` (H, W, C); raw:
    the spec rescales its input (integer arrays of any dtype are then pixels)."""
    if not path.exists():
        raise DataError(f"{shown(path)}: no such file or folder", hint="a dataset is " + FORMATS)
    shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
    validation, notes, skipped = None, (), ()
    if path.is_file() and path.suffix.lower() == ".npz" or (path.is_dir()
                                                            and npy_folder_files(path)):
        arrays, where = (read_npz(path), str(path)) if path.is_file() \
            else load_npy_folder(path)
        x_train, y_train, x_test, y_test, names = check_arrays(
            arrays, where, "member" if path.is_file() else "file", raw)
        info_name, title = path.stem, "NumPy arrays"
    elif is_cifar_archive(path) or (path.is_dir() and folder_layout(path) is not None):
        data = load_cifar(path)
        (x_train, y_train), (x_test, y_test) = data.train, data.test
        names, info_name, title = data.class_names, data.layout.name, data.layout.title
    elif path.is_dir() and is_image_folder(path):
        if shape is None:
            raise DataError(f"{shown(path)}: an image folder is read at the input's size, "
                            "which was not given")
        folder = load_image_folder(path, shape, image_fit, bad_images, log, stream=stream)
        x_train, y_train = folder.train.images, folder.train.labels
        x_test, y_test = folder.test.images, folder.test.labels
        if folder.validation is not None:
            validation = (folder.validation.images, folder.validation.labels)
        names, notes, skipped = folder.class_names, folder.notes, folder.skipped
        info_name, title = path.name, "image folder"
    else:
        raise DataError(f"{shown(path)}: not a dataset cnnc reads",
                        hint="a dataset is " + FORMATS)
    if stream and title != "image folder":
        raise DataError(f"{shown(path)}: stream applies to image folders only; {title} are "
                        "read whole", hint="remove stream from the train section")
    if shape is not None and len(shape) == 3:
        x_train = _fit(x_train, shape, f"{shown(path)}: training images")
        x_test = _fit(x_test, shape, f"{shown(path)}: test images")
    info = DatasetInfo(name=info_name, title=title, files=(), class_names=tuple(names),
                       mirrors=())
    return SourceData(info, (x_train, y_train), (x_test, y_test), validation,
                      FoundFiles(path, origin, {"data": path}), notes, skipped)


def _fit(images: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """Arrays converted to the input's channels when their height and width already match (a
    size mismatch is reported by to_inputs, with both shapes)."""
    if images.shape[1:3] == tuple(shape[:2]):
        return fit_channels(images, shape[2], where)
    return images
