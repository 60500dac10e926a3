"""NumPy implementation of depthwise_pointwise (cnnc/ir/depthwise_pointwise.py): its two parts'
implementations in turn, each on its own attributes and parameters."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.fused_impls import FUSED_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.depthwise_pointwise import parts

_PARTS: dict[str, Impl] = {**LAYER_IMPLS, **FUSED_IMPLS}


def _depthwise_pointwise(call: Call, x: np.ndarray, *params: np.ndarray) -> np.ndarray:
    dw, pw = parts(call.node, x.shape)
    first = len(dw.params)
    middle = _PARTS[dw.op](replace(call, node=dw), x, *params[:first])
    return _PARTS[pw.op](replace(call, node=pw), middle, *params[first:])


DEPTHWISE_POINTWISE_IMPLS: dict[str, Impl] = {"depthwise_pointwise": _depthwise_pointwise}
