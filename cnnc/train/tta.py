"""Test-time augmentation (train.tta): evaluation's outputs averaged over fixed views of each input.

Between the data and a compiled model's inference graph: the views are made on the host (a flip
or a one-pixel shift of an NHWC batch is a copy, cheap beside the forward pass) and each is run
through the backend's own `predict`, so both backends run the same views in the same order and
the average is deterministic. Used for validation and test figures only, never in training.

  none        the image alone
  flip        the image and its horizontal mirror: the mean of the two outputs
  flip_shift  those two, each also shifted by one pixel up, down, left and right (zero fill):
              the mean of ten outputs
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cnnc.errors import InputError
from cnnc.ir.train_config import TTA_MODES

# (rows, columns) each view moves the image by; the unshifted view first.
_SHIFTS = {"none": ((0, 0),), "flip": ((0, 0),),
           "flip_shift": ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))}


def view_count(mode: str) -> int:
    """How many forward passes each input costs under `mode`."""
    return len(_SHIFTS[mode]) * (1 if mode == "none" else 2)


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """NHWC images moved by dy rows and dx columns (out[y, x] = in[y - dy, x - dx]), zero fill:
    the padding the training crops use, so a shifted view is one a crop could have drawn."""
    if dy == 0 and dx == 0:
        return x
    out = np.zeros_like(x)
    h, w = x.shape[1], x.shape[2]
    dst_y, src_y = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h - max(dy, 0))
    dst_x, src_x = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w - max(dx, 0))
    out[:, dst_y, dst_x] = x[:, src_y, src_x]
    return out


def views(x: np.ndarray, mode: str) -> Iterator[np.ndarray]:
    """The views of a batch of NHWC images under `mode`, in a fixed order."""
    if mode not in _SHIFTS:
        raise InputError(f"unknown test-time augmentation {mode!r}; expected one of "
                         f"{', '.join(TTA_MODES)}")
    if mode != "none" and x.ndim != 4:
        raise InputError(f"test-time augmentation {mode} needs images (N, H, W, C), got inputs "
                         f"of shape {x.shape}")
    for dy, dx in _SHIFTS[mode]:
        view = shifted(x, dy, dx)
        yield view
        if mode != "none":
            yield view[:, :, ::-1]


def predict_averaged(model, x, mode: str, batch_size: int) -> np.ndarray:
    """`model.predict` of every view of `x` under `mode`, averaged: (N, outputs), the
    predictions' dtype.

    Runs batch_size rows at a time through each view, so the host holds one batch's views, not
    the dataset's copies; the mean is taken in float64 in the views' fixed order."""
    if mode == "none":
        return np.asarray(model.predict(x, batch_size=batch_size))
    parts = []
    for lo in range(0, len(x), batch_size):
        rows = np.asarray(x[lo:lo + batch_size])
        preds = [np.asarray(model.predict(np.ascontiguousarray(view), batch_size=batch_size))
                 for view in views(rows, mode)]
        mean = np.sum(np.stack(preds), axis=0, dtype=np.float64) / len(preds)
        parts.append(mean.astype(preds[0].dtype))
    if not parts:  # no examples: the model's own answer for an empty batch
        return np.asarray(model.predict(x, batch_size=batch_size))
    return np.concatenate(parts)
