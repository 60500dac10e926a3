"""NumPy implementation of squeeze_excite (cnnc/ir/squeeze_excite.py): its three parts'
implementations in turn (pooling, hidden layer, gate layer), each on its own attributes and
parameters: the fused op's reference is the unfused block."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.squeeze_excite import parts


def _squeeze_excite(call: Call, x: np.ndarray, *params: np.ndarray) -> np.ndarray:
    pool, hidden, gate = parts(call.node, x.shape)
    first = len(hidden.params)
    pooled = LAYER_IMPLS[pool.op](replace(call, node=pool), x)
    mid = LAYER_IMPLS[hidden.op](replace(call, node=hidden), pooled, *params[:first])
    return LAYER_IMPLS[gate.op](replace(call, node=gate), mid, *params[first:])


SQUEEZE_EXCITE_IMPLS: dict[str, Impl] = {"squeeze_excite": _squeeze_excite}
