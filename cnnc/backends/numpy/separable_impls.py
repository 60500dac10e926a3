"""NumPy implementation of separable_conv2d (cnnc/ir/separable.py): its two parts in order."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy import conv
from cnnc.backends.numpy.activations import activate
from cnnc.backends.numpy.call import Call, Impl
from cnnc.ir.layers import depthwise_as_conv2d
from cnnc.ir.separable import separable_parts


def _separable_conv2d(call: Call, x: np.ndarray, depthwise: np.ndarray, pointwise: np.ndarray,
                      bias: np.ndarray | None = None) -> np.ndarray:
    dw_attrs, pw_attrs = separable_parts(call.attrs)
    kh, kw, c, m = depthwise.shape
    t = conv.conv2d(x, depthwise.reshape(kh, kw, 1, c * m), depthwise_as_conv2d(dw_attrs, c))
    y = conv.conv2d(t, pointwise, pw_attrs)
    if bias is not None:
        y = y + bias
    return activate(call.attrs["activation"], y)


SEPARABLE_IMPLS: dict[str, Impl] = {"separable_conv2d": _separable_conv2d}
