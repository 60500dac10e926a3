"""NumPy implementation of conv2d_maxpool and conv2d_avgpool (cnnc/ir/conv_maxpool.py): the
convolution's implementation, then the pooling's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.fused_impls import FUSED_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.backends.numpy.residual_impls import RESIDUAL_IMPLS
from cnnc.ir.conv_maxpool import parts

_PARTS: dict[str, Impl] = {**LAYER_IMPLS, **FUSED_IMPLS, **RESIDUAL_IMPLS}


def _conv2d_maxpool(call: Call, *operands: np.ndarray) -> np.ndarray:
    n_in = len(call.node.inputs)
    conv, pool = parts(call.node, tuple(a.shape for a in operands[:n_in]))
    middle = _PARTS[conv.op](replace(call, node=conv), *operands)
    return _PARTS[pool.op](replace(call, node=pool), middle)


CONV_MAXPOOL_IMPLS: dict[str, Impl] = {"conv2d_maxpool": _conv2d_maxpool,
                                        "conv2d_avgpool": _conv2d_maxpool}
