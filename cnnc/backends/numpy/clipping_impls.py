"""NumPy implementations of the gradient-clipping ops (cnnc/ir/clipping.py), keyed by op name:
the reference kernels/clipping.cl is checked against."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.ir.clipping import CLIP_EPSILON


def _square_sum(call: Call, x: np.ndarray, running: np.ndarray | None = None) -> np.ndarray:
    total = np.sum(np.square(x), dtype=call.dtype)
    if running is not None:
        total = total + running[0]
    return np.asarray([total], dtype=call.dtype)


def _clip_coefficient(call: Call, squared_norm: np.ndarray) -> np.ndarray:
    norm = np.sqrt(squared_norm)
    coefficient = call.const(call.attrs["max_norm"]) / (norm + call.const(CLIP_EPSILON))
    return np.minimum(coefficient, call.const(1.0)).astype(call.dtype)


def _scale_gradient(call: Call, g: np.ndarray, coefficient: np.ndarray) -> np.ndarray:
    return g * coefficient[0]


CLIPPING_IMPLS: dict[str, Impl] = {
    "square_sum": _square_sum,
    "clip_coefficient": _clip_coefficient,
    "scale_gradient": _scale_gradient,
}
