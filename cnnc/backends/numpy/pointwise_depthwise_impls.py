"""NumPy implementation of pointwise_depthwise (cnnc/ir/pointwise_depthwise.py): its two parts'
implementations in turn, each on its own attributes and parameters."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.fused_impls import FUSED_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.pointwise_depthwise import NAME, parts

_PARTS: dict[str, Impl] = {**LAYER_IMPLS, **FUSED_IMPLS}


def _pointwise_depthwise(call: Call, x: np.ndarray, *params: np.ndarray) -> np.ndarray:
    pw, dw = parts(call.node, x.shape)
    first = len(pw.params)
    middle = _PARTS[pw.op](replace(call, node=pw), x, *params[:first])
    return _PARTS[dw.op](replace(call, node=dw), middle, *params[first:])


POINTWISE_DEPTHWISE_IMPLS: dict[str, Impl] = {NAME: _pointwise_depthwise}
