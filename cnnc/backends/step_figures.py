"""A training step's figures (its loss, its right predictions) kept by the backend until asked.

Shared by both backends: the training loop (cnnc/train/loop.py) enqueues steps with a `Record`
and reads the figures of many steps at once (Backend.read_step_figures), so that the host does
not wait for the device after every step. The OpenCL backend keeps them in device buffers
(opencl/queued_steps.py); the NumPy backend computes eagerly and keeps them in a list. Both
count right predictions as `count_correct` does on the host: NumPy's argmax (first largest
value, NaN largest) of the prediction equal to the target's class.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Record(NamedTuple):
    """What to keep of a run: the names of its scalar loss, its prediction (rows, classes) and
    its target input (class indices, or rows of one-hot floats)."""

    loss: str
    prediction: str
    target: str


class StepFigures(NamedTuple):
    """One step's loss (as the backend computed it) and how many of its predictions were right."""

    loss: float
    correct: int


def target_classes(target: np.ndarray) -> np.ndarray:
    """The class of each row of a target: itself for class indices, else the row's argmax."""
    target = np.asarray(target)
    return target if target.ndim == 1 else np.argmax(target.reshape(len(target), -1), axis=1)


def host_figures(loss: np.ndarray, pred: np.ndarray, target: np.ndarray) -> StepFigures:
    """The figures of one step computed on the host (the NumPy backend)."""
    pred = np.asarray(pred)
    right = np.argmax(pred.reshape(len(pred), -1), axis=1) == target_classes(target)
    return StepFigures(float(loss), int(np.count_nonzero(right)))
