"""NumPy implementations of the loss ops and their gradients (group 'loss'), keyed by op name.

A loss is a mean over rows, a row being every position but the class axis (the batch, for the
usual (N, classes) predictions); mean_squared_error is a mean over every element.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.errors import InputError
from cnnc.ir.losses import CLIP_EPSILON


def _rows(pred: np.ndarray) -> int:
    return pred.size // pred.shape[-1]


def _dense_target(call: Call, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Sparse class ids become one-hot rows in the compute dtype; dense targets pass through;
    then label smoothing e: (1 - e) * t + e / classes."""
    classes = pred.shape[-1]
    if call.attrs["sparse"]:
        if target.size and (target.min() < 0 or target.max() >= classes):
            bad = target[(target < 0) | (target >= classes)].ravel()[0]
            raise InputError(f"label {bad} is not a class id in 0..{classes - 1}")
        target = (target[..., None] == np.arange(classes)).astype(pred.dtype)
    e = call.attrs.get("label_smoothing", 0.0)
    if not e:
        return target
    return call.const(1.0 - e) * target + call.const(e / classes)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _softmax_cross_entropy(call: Call, logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    t = _dense_target(call, logits, target)
    return np.asarray(-(t * _log_softmax(logits)).sum() / call.const(_rows(logits)),
                      dtype=call.dtype)


def _softmax_cross_entropy_grad(call: Call, logits: np.ndarray,
                                target: np.ndarray) -> np.ndarray:
    t = _dense_target(call, logits, target)
    return (np.exp(_log_softmax(logits)) - t) / call.const(_rows(logits))


def _normalised(call: Call, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sum of each row, q = pred / sum, q clipped to [eps, 1 - eps])."""
    s = pred.sum(axis=-1, keepdims=True)
    q = pred / s
    eps = call.const(CLIP_EPSILON)
    return s, q, np.clip(q, eps, 1 - eps)


def _cross_entropy(call: Call, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    t = _dense_target(call, pred, target)
    _, _, c = _normalised(call, pred)
    return np.asarray(-(t * np.log(c)).sum() / call.const(_rows(pred)), dtype=call.dtype)


def _cross_entropy_grad(call: Call, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    t = _dense_target(call, pred, target)
    s, q, c = _normalised(call, pred)
    eps = call.const(CLIP_EPSILON)
    inside = (q >= eps) & (q <= 1 - eps)  # the clip's gradient is zero outside, as in TF
    g_q = np.where(inside, -t / c, call.const(0)) / call.const(_rows(pred))
    # Through q = pred / s: dL/dpred_j = (g_q_j - sum_k g_q_k q_k) / s.
    return (g_q - (g_q * q).sum(axis=-1, keepdims=True)) / s


def _mean_squared_error(call: Call, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    d = pred - target
    return np.asarray((d * d).sum() / call.const(d.size), dtype=call.dtype)


def _mean_squared_error_grad(call: Call, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    return call.const(2) * (pred - target) / call.const(pred.size)


LOSS_IMPLS: dict[str, Impl] = {
    "softmax_cross_entropy": _softmax_cross_entropy,
    "softmax_cross_entropy_grad": _softmax_cross_entropy_grad,
    "cross_entropy": _cross_entropy,
    "cross_entropy_grad": _cross_entropy_grad,
    "mean_squared_error": _mean_squared_error,
    "mean_squared_error_grad": _mean_squared_error_grad,
}
