"""NumPy implementations of the layer ops (inference semantics), keyed by op name.

Layer ops in a training graph are only those that behave the same in training (the training
pass replaces dropout and batchnorm by their training ops), so `dropout` is the identity and
`batchnorm` uses the moving averages here.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy import conv, pool
from cnnc.backends.numpy.activations import activate, activation
from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.merge_impls import expand
from cnnc.ir.layers import depthwise_as_conv2d


def _input(call: Call) -> np.ndarray:
    return call.feeds[call.node.name]


def _with_bias(call: Call, y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is not None:
        y = y + bias
    return activate(call.attrs["activation"], y)


def _conv2d(call: Call, x: np.ndarray, kernel: np.ndarray,
            bias: np.ndarray | None = None) -> np.ndarray:
    return _with_bias(call, conv.conv2d(x, kernel, call.attrs), bias)


def _dense(call: Call, x: np.ndarray, kernel: np.ndarray,
           bias: np.ndarray | None = None) -> np.ndarray:
    return _with_bias(call, x @ kernel, bias)


def _global_avgpool2d(call: Call, x: np.ndarray) -> np.ndarray:
    return x.mean(axis=(1, 2), keepdims=call.attrs["keepdims"])


def _flatten(call: Call, x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def _batchnorm(call: Call, x: np.ndarray, *params: np.ndarray) -> np.ndarray:
    """Operands after x: [gamma if scale] [beta if center] moving_mean moving_variance."""
    a = call.attrs
    params_ = list(params)
    gamma = params_.pop(0) if a["scale"] else None
    beta = params_.pop(0) if a["center"] else None
    mean, var = params_
    y = (x - mean) / np.sqrt(var + call.const(a["epsilon"]))
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y


def _zero_padding2d(call: Call, x: np.ndarray) -> np.ndarray:
    (t, b), (left, r) = call.attrs["padding"]
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)))


def _depthwise_conv2d(call: Call, x: np.ndarray, kernel: np.ndarray,
                      bias: np.ndarray | None = None) -> np.ndarray:
    attrs = depthwise_as_conv2d(call.attrs, x.shape[-1])
    kh, kw, c, m = kernel.shape
    return _with_bias(call, conv.conv2d(x, kernel.reshape(kh, kw, 1, c * m), attrs), bias)


def _add(call: Call, *xs: np.ndarray) -> np.ndarray:
    xs = tuple(expand(xs))  # broadcast like Keras (merge_impls.py)
    out = xs[0] + xs[1]
    for x in xs[2:]:
        out = out + x
    return out


LAYER_IMPLS: dict[str, Impl] = {
    "input": _input,
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise_conv2d,
    "maxpool2d": lambda call, x: pool.maxpool2d(x, call.attrs),
    "avgpool2d": lambda call, x: pool.avgpool2d(x, call.attrs),
    "global_avgpool2d": _global_avgpool2d,
    "zero_padding2d": _zero_padding2d,
    "dense": _dense,
    "flatten": _flatten,
    "dropout": lambda call, x: x,  # inference: the identity
    "batchnorm": _batchnorm,
    "activation": lambda call, x: activation(call.attrs, x),
    "add": _add,
    "concatenate": lambda call, *xs: np.concatenate(xs, axis=call.attrs["axis"]),
}
