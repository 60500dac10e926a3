"""Images kept on disk instead of in memory: an image folder's training part, streamed per batch.

With `train.stream: true`, an image folder's images are decoded once (on worker threads, a
bounded number in flight) into an anonymous temporary file of uint8 rows at the input size, and
training reads the rows of each batch from it (os.pread: the page cache, never a mapping of the
whole file), so memory holds a batch, not the folder. `DiskImages` is that file (indexing with
rows gives uint8 arrays; a slice gives a view); `StreamedInputs` is what the training loop
indexes: the same rows scaled to float32 in [0, 1], exactly as `to_inputs` scales them (or
their 0..255 values with `raw`, for a model whose `rescaling` layer scales them itself).
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any

import numpy as np

from cnnc.errors import DataError


class DiskImages:
    """uint8 images of one shape, stored as rows of a temporary file; `rows` maps the logical
    index to the row in the file (so skipping unreadable files costs no rewrite)."""

    def __init__(self, image_shape: tuple[int, ...], capacity: int):
        self.image_shape = tuple(int(d) for d in image_shape)
        self.row_bytes = math.prod(self.image_shape)
        try:
            # Kept open for the dataset's life; the file has no name and goes when it closes.
            self._file = tempfile.TemporaryFile(prefix="cnnc-images-")  # noqa: SIM115
        except OSError as err:
            raise DataError(f"cannot create a temporary file for streamed images "
                            f"({err.strerror or err})", hint="set TMPDIR to a writable folder"
                            ) from None
        self._fd = self._file.fileno()
        self.rows = np.arange(capacity, dtype=np.int64)

    # ------------------------------------------------------------ writing (the first scan)

    def write(self, index: int, image: np.ndarray) -> None:
        data = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
        if len(data) != self.row_bytes:
            raise ValueError(f"an image of {len(data)} bytes in rows of {self.row_bytes}")
        try:
            os.pwrite(self._fd, data, index * self.row_bytes)
        except OSError as err:
            raise DataError(f"cannot write streamed images to the temporary file "
                            f"({err.strerror or err})", hint="free disk space in TMPDIR, or "
                            "train without stream") from None

    def keep(self, mask: np.ndarray) -> DiskImages:
        """Only the images where `mask` is true (the readable ones), in the same file."""
        return self._view(self.rows[mask])

    # ------------------------------------------------------------ reading

    def _view(self, rows: np.ndarray) -> DiskImages:
        view = object.__new__(DiskImages)
        view.image_shape, view.row_bytes = self.image_shape, self.row_bytes
        view._file, view._fd, view.rows = self._file, self._fd, rows
        return view

    def read(self, index: Any) -> np.ndarray:
        """uint8 images (n, *image_shape) of the logical indices `index`."""
        rows = self.rows[np.asarray(index, dtype=np.int64).reshape(-1)]
        out = np.empty((len(rows), self.row_bytes), dtype=np.uint8)
        for i, row in enumerate(rows):
            data = os.pread(self._fd, self.row_bytes, int(row) * self.row_bytes)
            if len(data) != self.row_bytes:
                raise DataError("the streamed images' temporary file was truncated")
            out[i] = np.frombuffer(data, dtype=np.uint8)
        return out.reshape(len(rows), *self.image_shape)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.image_shape)

    dtype = np.dtype(np.uint8)

    @property
    def ndim(self) -> int:
        return 1 + len(self.image_shape)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self._view(self.rows[index])
        if isinstance(index, (int, np.integer)):
            return self.read([index])[0]
        return self.read(index)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.read(np.arange(len(self.rows)))
        return out if dtype is None else out.astype(dtype)


class StreamedInputs:
    """Model inputs (N, *input_shape) float32 read from `DiskImages` per index: what the training
    loop's x[idx] takes. Anything that needs a whole array (np.asarray) reads every row."""

    def __init__(self, images: DiskImages, input_shape: tuple[int, ...], raw: bool = False):
        self.images = images
        self.input_shape = tuple(int(d) for d in input_shape)
        self.raw = raw

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.images), *self.input_shape)

    dtype = np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 1 + len(self.input_shape)

    def _scaled(self, pixels: np.ndarray) -> np.ndarray:
        # The same float32 arithmetic as cnnc.data.dataset.scale_pixels: bit-identical inputs.
        values = pixels.astype(np.float32)
        if not self.raw:
            values /= np.float32(255.0)
        return values.reshape(-1, *self.input_shape)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return StreamedInputs(self.images[index], self.input_shape, self.raw)
        if isinstance(index, (int, np.integer)):
            return self._scaled(self.images.read([index]))[0]
        return self._scaled(self.images.read(index))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._scaled(self.images.read(np.arange(len(self.images))))
        return out if dtype is None else out.astype(dtype)
