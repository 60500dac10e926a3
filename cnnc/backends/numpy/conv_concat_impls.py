"""NumPy implementation of conv2d_concat (cnnc/ir/conv_concat.py): each upsampling, the
concatenation, then the convolution, as the unfused graph runs them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.fused_impls import FUSED_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.backends.numpy.resample_impls import RESAMPLE_IMPLS
from cnnc.ir.conv_concat import parts

_PARTS: dict[str, Impl] = {**LAYER_IMPLS, **FUSED_IMPLS, **RESAMPLE_IMPLS}


def _conv2d_concat(call: Call, *operands: np.ndarray) -> np.ndarray:
    n_in = len(call.node.inputs)
    values = dict(zip(call.node.inputs, operands[:n_in]))
    *inner, conv = parts(call.node, tuple(a.shape for a in operands[:n_in]))
    for node in inner:
        values[node.name] = _PARTS[node.op](replace(call, node=node),
                                            *(values[x] for x in node.inputs))
    return _PARTS[conv.op](replace(call, node=conv), values[conv.inputs[0]], *operands[n_in:])


CONV_CONCAT_IMPLS: dict[str, Impl] = {"conv2d_concat": _conv2d_concat}
