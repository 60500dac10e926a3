"""NumPy implementations of the gradient ops (group 'gradient'), keyed by op name.

Each follows the `doc` of its op in cnnc/ir/gradients.py, which the OpenCL kernels implement too.
"""

from __future__ import annotations

import numpy as np

from cnnc import rng as crandom
from cnnc.backends.numpy import conv, pool
from cnnc.backends.numpy.activations import activate, activation_grad
from cnnc.backends.numpy.call import Call, Impl
from cnnc.ir.layers import depthwise_as_conv2d


def _input_shape(call: Call, batch: int) -> tuple[int, ...]:
    return (batch, *call.attrs["input_shape"])


def _all_but_last(x: np.ndarray) -> tuple[int, ...]:
    return tuple(range(x.ndim - 1))


def _dropout_scale(call: Call, x: np.ndarray) -> np.ndarray:
    a = call.attrs
    per_example = x.size // x.shape[0] if x.ndim else 1
    keep = crandom.keep_mask(a["seed"], call.step, x.shape, a["rate"],
                             start=call.first_example * per_example)
    return np.where(keep, x / call.const(1.0 - a["rate"]), call.const(0.0))


def _bn_split(call: Call, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, 1/sqrt(var + epsilon)) from a batchnorm_stats value."""
    return stats[0], 1 / np.sqrt(stats[1] + call.const(call.attrs["epsilon"]))


def _batchnorm_stats(call: Call, x: np.ndarray) -> np.ndarray:
    axes = _all_but_last(x)
    mean = x.mean(axis=axes)
    var = ((x - mean) ** 2).mean(axis=axes)  # two passes: no cancellation for large means
    return np.stack([mean, var])


def _batchnorm_train(call: Call, x: np.ndarray, stats: np.ndarray,
                     *affine: np.ndarray) -> np.ndarray:
    a = call.attrs
    mean, inv_std = _bn_split(call, stats)
    y = (x - mean) * inv_std
    rest = list(affine)
    if a["scale"]:
        y = y * rest.pop(0)
    if a["center"]:
        y = y + rest.pop(0)
    return activate(a["activation"], y)


def _batchnorm_grad_input(call: Call, x: np.ndarray, stats: np.ndarray, dy: np.ndarray,
                          gamma: np.ndarray | None = None) -> np.ndarray:
    mean, inv_std = _bn_split(call, stats)
    axes = _all_but_last(x)
    xhat = (x - mean) * inv_std
    g = dy * gamma if gamma is not None else dy
    return (g - g.mean(axis=axes) - xhat * (g * xhat).mean(axis=axes)) * inv_std


def _batchnorm_grad_gamma(call: Call, x: np.ndarray, stats: np.ndarray,
                          dy: np.ndarray) -> np.ndarray:
    mean, inv_std = _bn_split(call, stats)
    return (dy * ((x - mean) * inv_std)).sum(axis=_all_but_last(x))


def _dense_grad_kernel(call: Call, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])


def _global_avgpool2d_grad(call: Call, dy: np.ndarray) -> np.ndarray:
    n = dy.shape[0]
    h, w, c = call.attrs["input_shape"]
    share = dy.reshape(n, 1, 1, c) / call.const(h * w)
    return np.ascontiguousarray(np.broadcast_to(share, (n, h, w, c)))


def _excite_grad(call: Call, dm: np.ndarray, gate: np.ndarray,
                 dpool: np.ndarray) -> np.ndarray:
    n, h, w, c = dm.shape
    return dm * gate.reshape(n, 1, 1, c) + dpool.reshape(n, 1, 1, c) / call.const(h * w)


def _slice(call: Call, x: np.ndarray) -> np.ndarray:
    a = call.attrs
    index = [slice(None)] * x.ndim
    index[a["axis"] % x.ndim] = slice(a["start"], a["stop"])
    return np.ascontiguousarray(x[tuple(index)])


def _depthwise_grad_input(call: Call, dy: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    shape = _input_shape(call, dy.shape[0])
    kh, kw, c, m = kernel.shape
    attrs = depthwise_as_conv2d(call.attrs, c)
    return conv.conv2d_grad_input(dy, kernel.reshape(kh, kw, 1, c * m), attrs, shape)


def _depthwise_grad_kernel(call: Call, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    c, m = x.shape[-1], call.attrs["depth_multiplier"]
    grad = conv.conv2d_grad_kernel(x, dy, depthwise_as_conv2d(call.attrs, c))
    return grad.reshape(*grad.shape[:2], c, m)


GRADIENT_IMPLS: dict[str, Impl] = {
    "activation_grad": lambda call, v, dy: activation_grad(call.attrs, v, dy),
    "conv2d_grad_input": lambda call, dy, kernel: conv.conv2d_grad_input(
        dy, kernel, call.attrs, _input_shape(call, dy.shape[0])),
    "conv2d_grad_kernel": lambda call, x, dy: conv.conv2d_grad_kernel(x, dy, call.attrs),
    "depthwise_conv2d_grad_input": _depthwise_grad_input,
    "depthwise_conv2d_grad_kernel": _depthwise_grad_kernel,
    "bias_grad": lambda call, dy: dy.sum(axis=_all_but_last(dy)),
    "dense_grad_input": lambda call, dy, kernel: dy @ kernel.T,
    "dense_grad_kernel": _dense_grad_kernel,
    "maxpool2d_grad": lambda call, x, dy: pool.maxpool2d_grad(x, dy, call.attrs),
    "avgpool2d_grad": lambda call, dy: pool.avgpool2d_grad(
        dy, call.attrs, _input_shape(call, dy.shape[0])),
    "global_avgpool2d_grad": _global_avgpool2d_grad,
    "excite_grad": _excite_grad,
    "view": lambda call, x: x.reshape(x.shape[0], *call.attrs["shape"]),
    "slice": _slice,
    "dropout_train": _dropout_scale,
    "dropout_grad": _dropout_scale,
    "batchnorm_stats": _batchnorm_stats,
    "batchnorm_train": _batchnorm_train,
    "batchnorm_grad_input": _batchnorm_grad_input,
    "batchnorm_grad_gamma": _batchnorm_grad_gamma,
}
