"""NumPy implementations of the update ops (group 'update'): state written in place.

Per-step scalars come from OpDef.scalars (computed once on the host, identical for every backend)
and arrive in `call.scalars`, already in the compute dtype. Each implementation returns None.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl


def _moving_average_update(call: Call, moving: np.ndarray, stats: np.ndarray) -> None:
    a = call.attrs
    momentum = call.const(a["momentum"])
    moving *= momentum
    moving += stats[a["index"]] * (1 - momentum)


def _decay(call: Call, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """The gradient with an L2 regularizer's 2 * l2 * p added (the last scalar), then the
    decoupled weight decay p *= 1 - lr * weight_decay (the scalar before): every step's start.
    """
    if call.attrs["l2"]:
        grad = grad + call.scalars[-1] * param
    if call.attrs["weight_decay"]:
        param *= call.scalars[-2]
    return grad


def _sgd_update(call: Call, param: np.ndarray, grad: np.ndarray,
                velocity: np.ndarray | None = None) -> None:
    lr, momentum = call.scalars[:2]
    grad = _decay(call, param, grad)
    if velocity is None:
        param -= lr * grad
        return
    velocity *= momentum
    velocity -= lr * grad
    if call.attrs["nesterov"]:
        param += momentum * velocity - lr * grad
    else:
        param += velocity


def _moments(call: Call, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
             one_minus_b1: np.floating, one_minus_b2: np.floating) -> None:
    m += (grad - m) * one_minus_b1
    v += (grad * grad - v) * one_minus_b2


def _adam_update(call: Call, param: np.ndarray, grad: np.ndarray, m: np.ndarray,
                 v: np.ndarray) -> None:
    alpha, one_minus_b1, one_minus_b2, eps = call.scalars[:4]
    grad = _decay(call, param, grad)
    _moments(call, grad, m, v, one_minus_b1, one_minus_b2)
    param -= alpha * m / (np.sqrt(v) + eps)


def _nadam_update(call: Call, param: np.ndarray, grad: np.ndarray, m: np.ndarray,
                  v: np.ndarray) -> None:
    c_m, c_g, c_v, one_minus_b1, one_minus_b2, eps = call.scalars[:6]
    grad = _decay(call, param, grad)
    _moments(call, grad, m, v, one_minus_b1, one_minus_b2)
    param -= (c_m * m + c_g * grad) / (np.sqrt(v * c_v) + eps)


UPDATE_IMPLS: dict[str, Impl] = {
    "moving_average_update": _moving_average_update,
    "sgd_update": _sgd_update,
    "adam_update": _adam_update,
    "adamw_update": _adam_update,
    "nadam_update": _nadam_update,
}
