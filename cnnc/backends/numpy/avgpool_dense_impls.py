"""NumPy implementation of avgpool_dense (cnnc/ir/avgpool_dense.py): the pooling's
implementation, then the dense layer's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.avgpool_dense import parts


def _avgpool_dense(call: Call, x: np.ndarray, *params: np.ndarray) -> np.ndarray:
    pool, dense = parts(call.node, x.shape)
    middle = LAYER_IMPLS[pool.op](replace(call, node=pool), x)
    return LAYER_IMPLS[dense.op](replace(call, node=dense), middle, *params)


AVGPOOL_DENSE_IMPLS: dict[str, Impl] = {"avgpool_dense": _avgpool_dense}
