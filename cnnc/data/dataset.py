"""A dataset loaded into memory: the four IDX files checked against each other, and model inputs.

Images stay uint8 until `to_inputs` scales them to [0, 1] float32 (the seed code's `/ 255.`) in
the spec's input shape, so a 60,000-image training set costs 47 MB until it is used. A model
whose input only `rescaling` layers read (`raw_pixels`) is given the pixels' 0..255 values
instead: its own layer scales them, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnc.data.catalog import DATASETS, DatasetInfo, dataset_info
from cnnc.data.idx import read_idx
from cnnc.data.locate import FoundFiles, _with_subfolders, files_in, locate_dataset
from cnnc.data.sources import is_source_path, load_source
from cnnc.data.streamed import DiskImages, StreamedInputs
from cnnc.errors import DataError
from cnnc.inputs import shape_error
from cnnc.ir.graph import Graph
from cnnc.ir.preprocessing import rescaled_inputs
from cnnc.ir.train_config import is_dataset_path


@dataclass(frozen=True)
class Split:
    """Images (N, H, W) or (N, H, W, C), uint8 (or float32 in [0, 1]), and labels (N,) int32."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int) -> Split:
        return Split(self.images[:n], self.labels[:n])


@dataclass(frozen=True)
class Dataset:
    info: DatasetInfo
    train: Split
    test: Split
    source: FoundFiles | None = None
    # A separate validation set (an image folder's val/), used instead of a split of train.
    validation: Split | None = None
    notes: tuple[str, ...] = ()  # how the files were read, for the run's header
    skipped: tuple[str, ...] = ()  # "PATH: reason" for each unreadable file skipped

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train.images.shape[1:])


def _read_pair(images_path: Path, labels_path: Path, classes: int) -> Split:
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.dtype != np.uint8:
        raise DataError(f"{images_path}: expected uint8 pixels, the file holds {images.dtype}")
    if labels.dtype != np.uint8:
        raise DataError(f"{labels_path}: expected uint8 labels, the file holds {labels.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
                        f"{labels.shape[0]} labels; the two files must have one label per image")
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: the file holds no images")
    bad = np.flatnonzero(labels >= classes)
    if bad.size:
        raise DataError(f"{labels_path}: label {int(labels[bad[0]])} at index {int(bad[0])} is "
                        f"outside 0..{classes - 1} ({bad.size} such labels)")
    return Split(images, labels.astype(np.int32))


def load_dataset(
    name: str = "fashion_mnist",
    data_dir: str | Path | None = None,
    *,
    download: bool | None = None,
    log: Callable[[str], None] | None = None,
    input_shape: Sequence[int] | None = None,
    image_fit: str = "resize",
    bad_images: str = "refuse",
    stream: bool = False,
    raw: bool = False,
) -> Dataset:
    """Find (or download) and read a dataset's training and test sets.

    name: a dataset cnnc knows (fashion_mnist, mnist) or the path of the user's own
    (cnnc/data/sources.py); data_dir (--data): the folder of the named one's IDX files, or a
    dataset path of its own, which then replaces `name`. input_shape (H, W, C): the spec's
    input, to which image folders are decoded and arrays' channels converted. raw: the spec
    rescales its input (`raw_pixels`), which decides whether integer arrays are pixels.
    """
    source, origin = None, "--data"
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        idx_folder = name in DATASETS and any(
            not files_in(f, DATASETS[name])[1] for f in _with_subfolders(folder, DATASETS[name]))
        if not idx_folder and (name not in DATASETS or is_source_path(folder)):
            source = folder
    elif name not in DATASETS and is_dataset_path(name):
        source, origin = Path(name).expanduser(), "train.dataset"
    if source is not None:
        data = load_source(source, input_shape, image_fit=image_fit, bad_images=bad_images,
                           log=log, origin=origin, stream=stream, raw=raw)
        return Dataset(data.info, Split(*data.train), Split(*data.test), data.found,
                       validation=Split(*data.validation) if data.validation else None,
                       notes=data.notes, skipped=data.skipped)
    info = dataset_info(name)
    found = locate_dataset(info, data_dir, download=download, log=log)
    classes = len(info.class_names)
    train = _read_pair(found.paths["train_images"], found.paths["train_labels"], classes)
    test = _read_pair(found.paths["test_images"], found.paths["test_labels"], classes)
    if train.images.shape[1:] != test.images.shape[1:]:
        raise DataError(f"{found.paths['train_images']} holds {_hw(train)} images but "
                        f"{found.paths['test_images']} holds {_hw(test)} images")
    return Dataset(info, train, test, found)


def _hw(split: Split) -> str:
    return "x".join(str(d) for d in split.images.shape[1:])


def to_inputs(images: np.ndarray, input_shape: Sequence[int], raw: bool = False) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, C) as float32 in [0, 1] of shape (N, *input_shape).

    raw: the model scales its pixels itself (`raw_pixels`): uint8 values become float32 of the
    same values, 0..255 (float pixels, in [0, 1], times 255), so that its `rescaling` layer
    scales them exactly once.
    """
    shape = tuple(int(d) for d in input_shape)
    if isinstance(images, DiskImages):  # streamed: scaled per batch as it is read
        per_image = images.shape[1:]
        if per_image != shape and not (per_image == shape[:-1] and shape[-1] == 1):
            raise shape_error("the spec's input", shape, images.shape,
                              hint="the dataset's images must match the input layer's shape")
        return StreamedInputs(images, shape, raw=raw)
    images = np.asarray(images)
    per_image = images.shape[1:]
    if per_image == shape[:-1] and shape[-1] == 1:
        images = images[..., None]
    elif per_image != shape:
        raise shape_error("the spec's input", shape, images.shape,
                          hint="the dataset's images must match the input layer's shape")
    return scale_pixels(images, raw)


def scale_pixels(pixels: np.ndarray, raw: bool = False) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1]: the seed code's `/ 255.`, for training and predict;
    with raw (the model's own rescaling layer scales them), float32 of the same 0..255 values.
    Float pixels (a file's, in [0, 1]: cnnc/inputs.py's file_pixels) stay as they are, or are
    made 0..255 for raw, so that such a model scales every file's pixels exactly once."""
    if pixels.dtype != np.uint8:
        floats = pixels.astype(np.float32, copy=False)
        return floats * np.float32(255.0) if raw else floats
    if raw:
        return pixels.astype(np.float32)
    return pixels.astype(np.float32) / np.float32(255.0)


def raw_pixels(graph: Graph) -> bool:
    """True when the graph's (first) input is read by `rescaling` layers alone: the model scales
    its own pixels, so the data layer hands it 0..255 values rather than dividing by 255 too
    (cnnc.ir.preprocessing.rescaled_inputs, which Model.predict's integer inputs also follow)."""
    return bool(graph.inputs) and graph.inputs[0] in rescaled_inputs(graph)


def load_configured(config, data_dir: str | Path | None, input_shape: Sequence[int],
                    log: Callable[[str], None] | None = None, raw: bool = False) -> Dataset:
    """The dataset of a spec's train section (a TrainConfig: its dataset, image_fit and
    bad_images), read for inputs of `input_shape`; data_dir: --data; raw: `raw_pixels`."""
    return load_dataset(config.dataset, data_dir, log=log, input_shape=input_shape,
                        image_fit=config.image_fit, bad_images=config.bad_images,
                        stream=config.stream, raw=raw)
