"""NumPy implementation of maxpool2d_concat (cnnc/ir/pool_concat.py): the concatenation, then
the max pooling, as the unfused graph runs them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.pool_concat import parts


def _maxpool2d_concat(call: Call, *operands: np.ndarray) -> np.ndarray:
    cat, pool = parts(call.node, tuple(a.shape for a in operands))
    joined = LAYER_IMPLS[cat.op](replace(call, node=cat), *operands)
    return LAYER_IMPLS[pool.op](replace(call, node=pool), joined)


POOL_CONCAT_IMPLS: dict[str, Impl] = {"maxpool2d_concat": _maxpool2d_concat}
