"""Activation functions and their derivatives (from the output y), for the NumPy backend.

Keyed by the rows of the activations table (cnnc/ir/activations.py), whose constants they read;
tests/numpy/test_interpreter.py checks that both tables cover every row, and that the
activations with parameters (the relu: Keras' ReLU) have an entry in PARAMETERISED too.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from cnnc.ir.activations import ACTIVATIONS, GELU_TANH_C, GELU_TANH_K, parameters

SLOPE = ACTIVATIONS["leaky_relu"].constants["slope"]
ALPHA = ACTIVATIONS["elu"].constants["alpha"]
MAX6 = ACTIVATIONS["relu6"].constants["max_value"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow for large |x|.
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, x.dtype.type(ALPHA) * np.expm1(np.minimum(x, 0)))


# ---------------------------------------------------------------- issue 20's activations
# Each computes in float64 and rounds once to the input's dtype: the reference the OpenCL
# kernels (a few float32 ulps) are held to. Their derivatives read the input x
# (Activation.from_input). NumPy has no erf: math.erfc element by element, exact in float64.
HS_ALPHA = ACTIVATIONS["hard_sigmoid"].constants["alpha"]
HS_BETA = ACTIVATIONS["hard_sigmoid"].constants["beta"]
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _in64(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def forward(x: np.ndarray) -> np.ndarray:
        return np.asarray(f(x.astype(np.float64)), dtype=np.float64).astype(x.dtype, copy=False)
    return forward


def _grad64(f: Callable[[np.ndarray], np.ndarray]
            ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def backward(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        d = f(x.astype(np.float64)) * dy.astype(np.float64)
        return d.astype(dy.dtype, copy=False)
    return backward


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _hard_sigmoid(x: np.ndarray) -> np.ndarray:
    # Keras' relu6(x + 3) / 6: alpha x + beta with the row's constants, as kernels/common.h
    return np.clip(x + 3, 0, 6) / 6


def _phi_upper(x: np.ndarray) -> np.ndarray:
    """Phi(x), the standard normal CDF, as erfc(-x / sqrt 2) / 2: no cancellation below 0."""
    return 0.5 * _erfc(-x * math.sqrt(0.5)).astype(np.float64)


def _gelu_tanh_s(x: np.ndarray) -> np.ndarray:
    # 0.5 (1 + tanh u) = sigmoid(2u): no cancellation for negative x
    return _sigmoid(2 * GELU_TANH_K * (x + GELU_TANH_C * x ** 3))


def _gelu_tanh_grad(x: np.ndarray) -> np.ndarray:
    s = _gelu_tanh_s(x)
    return s + 2 * x * s * (1 - s) * GELU_TANH_K * (1 + 3 * GELU_TANH_C * x * x)


def _mish_grad(x: np.ndarray) -> np.ndarray:
    t = np.tanh(_softplus(x))
    return t + x * _sigmoid(x) * (1 - t * t)


NEW_FORWARD: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "silu": _in64(lambda x: x * _sigmoid(x)),
    "hard_sigmoid": _in64(_hard_sigmoid),
    "hard_swish": _in64(lambda x: x * _hard_sigmoid(x)),
    "gelu": _in64(lambda x: x * _phi_upper(x)),
    "gelu_tanh": _in64(lambda x: x * _gelu_tanh_s(x)),
    "softplus": _in64(_softplus),
    "mish": _in64(lambda x: x * np.tanh(_softplus(x))),
}

NEW_BACKWARD: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "silu": _grad64(lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x)))),
    "hard_sigmoid": _grad64(
        lambda x: np.where((x * HS_ALPHA + HS_BETA > 0) & (x * HS_ALPHA + HS_BETA < 1),
                           HS_ALPHA, 0.0)),
    "hard_swish": _grad64(lambda x: np.where(x < -3, 0.0, np.where(x > 3, 1.0, x / 3 + 0.5))),
    "gelu": _grad64(lambda x: _phi_upper(x)
                    + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)),
    "gelu_tanh": _grad64(_gelu_tanh_grad),
    "softplus": _grad64(_sigmoid),
    "mish": _grad64(_mish_grad),
}


FORWARD: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, x.dtype.type(0)),
    "leaky_relu": lambda x: np.where(x > 0, x, x * x.dtype.type(SLOPE)),
    "relu6": lambda x: np.clip(x, x.dtype.type(0), x.dtype.type(MAX6)),
    "elu": _elu,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
    **NEW_FORWARD,
}


def _softmax_grad(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


# d(activation)/dx times dy, written in terms of the output y (the activation_grad op), or of
# the input x for the rows with `from_input` (NEW_BACKWARD).
BACKWARD: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "linear": lambda y, dy: dy,
    "relu": lambda y, dy: np.where(y > 0, dy, dy.dtype.type(0)),
    "leaky_relu": lambda y, dy: np.where(y > 0, dy, dy * dy.dtype.type(SLOPE)),
    "relu6": lambda y, dy: np.where((y > 0) & (y < MAX6), dy, dy.dtype.type(0)),
    "elu": lambda y, dy: np.where(y > 0, dy, dy * (y + y.dtype.type(ALPHA))),
    "sigmoid": lambda y, dy: dy * y * (1 - y),
    "tanh": lambda y, dy: dy * (1 - y * y),
    "softmax": _softmax_grad,
    **NEW_BACKWARD,
}


def activate(name: str, x: np.ndarray) -> np.ndarray:
    """An activation by name alone (what a layer's `activation` argument applies)."""
    return FORWARD[name](x)


# ---------------------------------------------------------------- with parameters (Keras' ReLU)
# Keras computes its ReLU layer in three steps, which fix what happens between the kinks: keep x
# above the threshold (else 0), clip that to [0, max_value] when there is a cap, then subtract
# negative_slope * max(threshold - x, 0). kernels/common.h's relu with parameters does the same.


def _keras_relu(x: np.ndarray, attrs) -> np.ndarray:
    t = x.dtype.type
    threshold, cap, slope = attrs["threshold"], attrs["max_value"], attrs["negative_slope"]
    y = np.where(x > t(threshold), x, t(0))
    if cap is not None:
        y = np.clip(y, t(0), t(cap))
    if slope != 0.0:
        y = y - t(slope) * np.maximum(t(threshold) - x, t(0))
    return y


def _keras_relu_grad(x: np.ndarray, dy: np.ndarray, attrs) -> np.ndarray:
    """From the input x (activations.reads_input)."""
    t = x.dtype.type
    threshold, cap, slope = attrs["threshold"], attrs["max_value"], attrs["negative_slope"]
    passes = x > t(threshold)
    if cap is not None:
        passes &= (x > t(0)) & (x < t(cap))
    scale = np.where(passes, t(1), t(0)) + np.where(x < t(threshold), t(slope), t(0))
    return dy * scale


# name -> (forward(x, attrs), backward(x, dy, attrs)) for an activation node whose parameters
# are not all at their defaults (activations.parameters).
PARAMETERISED: dict[str, tuple[Callable, Callable]] = {
    "relu": (_keras_relu, _keras_relu_grad),
}


def activation(attrs, x: np.ndarray) -> np.ndarray:
    """The `activation` op: by name, or with its parameters."""
    if parameters(attrs):
        return PARAMETERISED[attrs["activation"]][0](x, attrs)
    return FORWARD[attrs["activation"]](x)


def activation_grad(attrs, v: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The activation_grad op: from the output y, or (with parameters, or a `from_input` row)
    from the input x."""
    if parameters(attrs):
        return PARAMETERISED[attrs["activation"]][1](v, dy, attrs)
    return BACKWARD[attrs["activation"]](v, dy)
