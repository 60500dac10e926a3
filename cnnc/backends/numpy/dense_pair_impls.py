"""NumPy implementation of dense_pair (cnnc/ir/dense_pair.py): the hidden layer's
implementation, then the head's, each on its own attributes and parameters: the fused op's
reference is the unfused pair."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.dense_pair import parts


def _dense_pair(call: Call, x: np.ndarray, *params: np.ndarray) -> np.ndarray:
    hidden, head = parts(call.node, x.shape)
    first = len(hidden.params)
    mid = LAYER_IMPLS["dense"](replace(call, node=hidden), x, *params[:first])
    return LAYER_IMPLS["dense"](replace(call, node=head), mid, *params[first:])


DENSE_PAIR_IMPLS: dict[str, Impl] = {"dense_pair": _dense_pair}
