"""NumPy implementations of batch norm's gradient through its activation
(cnnc/ir/bn_act_grad.py), keyed by op name."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.activations import activate, activation_grad
from cnnc.backends.numpy.call import Call, Impl
from cnnc.ir.activations import ACTIVATIONS


def _dv(call: Call, x: np.ndarray, stats: np.ndarray, dy: np.ndarray,
        affine: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(dv, xhat, 1/sqrt(var + epsilon), the gamma dx is scaled by) of a batch norm whose
    output passed through the activation: dv = act'(v) * dy, v recomputed from x."""
    a = call.attrs
    inv_std = 1 / np.sqrt(stats[1] + call.const(a["epsilon"]))
    xhat = (x - stats[0]) * inv_std
    rest = list(affine)
    gamma = rest.pop(0) if a["scale"] else call.const(1.0)
    v = xhat * gamma
    if a["center"]:
        v = v + rest.pop(0)
    act = a["activation"]
    at = v if ACTIVATIONS[act].from_input else activate(act, v)
    return activation_grad({"activation": act}, at, dy), xhat, inv_std, gamma


def _sums(call: Call, x: np.ndarray, stats: np.ndarray, dy: np.ndarray,
          *affine: np.ndarray) -> np.ndarray:
    dv, xhat, _, _ = _dv(call, x, stats, dy, affine)
    axes = tuple(range(x.ndim - 1))
    return np.stack([dv.sum(axis=axes), (dv * xhat).sum(axis=axes)])


def _apply(call: Call, x: np.ndarray, stats: np.ndarray, dy: np.ndarray, sums: np.ndarray,
           *affine: np.ndarray) -> np.ndarray:
    dv, xhat, inv_std, gamma = _dv(call, x, stats, dy, affine)
    rows = call.const(x.size // x.shape[-1])
    return (dv * gamma - gamma * sums[0] / rows - xhat * (gamma * sums[1] / rows)) * inv_std


BN_ACT_GRAD_IMPLS: dict[str, Impl] = {
    "batchnorm_act_grad_sums": _sums,
    "batchnorm_act_grad_apply": _apply,
}
