"""NumPy implementation of pointwise_avgpool (cnnc/ir/pointwise_avgpool.py): the convolution's
implementation, then the pooling's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.fused_impls import FUSED_IMPLS
from cnnc.backends.numpy.gathered_impls import GATHERED_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.pointwise_avgpool import parts

_PARTS: dict[str, Impl] = {**LAYER_IMPLS, **FUSED_IMPLS, **GATHERED_IMPLS}


def _pointwise_avgpool(call: Call, *operands: np.ndarray) -> np.ndarray:
    xs = operands[:len(call.node.inputs)]  # a gathered convolution's several inputs
    conv, pool = parts(call.node, tuple(x.shape for x in xs))
    middle = _PARTS[conv.op](replace(call, node=conv), *operands)
    return _PARTS[pool.op](replace(call, node=pool), middle)


POINTWISE_AVGPOOL_IMPLS: dict[str, Impl] = {"pointwise_avgpool": _pointwise_avgpool}
