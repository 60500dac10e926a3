"""NumPy implementation of depthwise_layer_norm (cnnc/ir/depthwise_layer_norm.py): its two
parts' implementations in turn, each on its own attributes and parameters."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.backends.numpy.layer_norm_impls import LAYER_NORM_IMPLS
from cnnc.ir.depthwise_layer_norm import NAME, parts


def _depthwise_layer_norm(call: Call, x: np.ndarray, *params: np.ndarray) -> np.ndarray:
    dw, ln = parts(call.node, x.shape)
    first = len(dw.params)
    middle = LAYER_IMPLS[dw.op](replace(call, node=dw), x, *params[:first])
    return LAYER_NORM_IMPLS[ln.op](replace(call, node=ln), middle, *params[first:])


DEPTHWISE_LAYER_NORM_IMPLS: dict[str, Impl] = {NAME: _depthwise_layer_norm}
