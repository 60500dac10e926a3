"""Activation functions and their derivatives (from the output y), for the NumPy backend.

Keyed by the names in cnnc.ir.args.ACTIVATIONS; a test checks both tables cover them all.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cnnc.ir.layers import ELU_ALPHA, LEAKY_RELU_SLOPE


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow for large |x|.
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, x.dtype.type(ELU_ALPHA) * np.expm1(np.minimum(x, 0)))


FORWARD: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, x.dtype.type(0)),
    "leaky_relu": lambda x: np.where(x > 0, x, x * x.dtype.type(LEAKY_RELU_SLOPE)),
    "elu": _elu,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
}


def _softmax_grad(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


# d(activation)/dx times dy, written in terms of the output y (cnnc.ir.gradients activation_grad).
BACKWARD: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "linear": lambda y, dy: dy,
    "relu": lambda y, dy: np.where(y > 0, dy, dy.dtype.type(0)),
    "leaky_relu": lambda y, dy: np.where(y > 0, dy, dy * dy.dtype.type(LEAKY_RELU_SLOPE)),
    "elu": lambda y, dy: np.where(y > 0, dy, dy * (y + y.dtype.type(ELU_ALPHA))),
    "sigmoid": lambda y, dy: dy * y * (1 - y),
    "tanh": lambda y, dy: dy * (1 - y * y),
    "softmax": _softmax_grad,
}


def activate(name: str, x: np.ndarray) -> np.ndarray:
    return FORWARD[name](x)
