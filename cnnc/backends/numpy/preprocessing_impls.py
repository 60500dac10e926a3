"""NumPy implementations of the preprocessing layers and normalization's gradient
(cnnc/ir/preprocessing.py), keyed by op name: the reference kernels/preprocessing.cl is checked
against."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.ir.preprocessing import NORMALIZATION_EPSILON


def _rescaling(call: Call, x: np.ndarray) -> np.ndarray:
    return x * call.const(call.attrs["scale"]) + call.const(call.attrs["offset"])


def _std(call: Call, variance: np.ndarray) -> np.ndarray:
    """Keras' divisor: the standard deviation, at least its epsilon."""
    return np.maximum(np.sqrt(variance), call.const(NORMALIZATION_EPSILON))


def _normalization(call: Call, x: np.ndarray, mean: np.ndarray,
                   variance: np.ndarray) -> np.ndarray:
    return (x - mean) / _std(call, variance)


def _normalization_grad(call: Call, dy: np.ndarray, variance: np.ndarray) -> np.ndarray:
    return dy / _std(call, variance)


PREPROCESSING_IMPLS: dict[str, Impl] = {
    "rescaling": _rescaling,
    "normalization": _normalization,
    "normalization_grad": _normalization_grad,
}
