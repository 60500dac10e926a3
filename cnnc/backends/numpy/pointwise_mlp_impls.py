"""NumPy implementation of pointwise_mlp (cnnc/ir/pointwise_mlp.py): the expansion's
implementation, then the projection's (with the residual, if any)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.fused_impls import FUSED_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.backends.numpy.residual_impls import RESIDUAL_IMPLS
from cnnc.ir.pointwise_mlp import parts

_PARTS: dict[str, Impl] = {**LAYER_IMPLS, **FUSED_IMPLS, **RESIDUAL_IMPLS}


def _pointwise_mlp(call: Call, *operands: np.ndarray) -> np.ndarray:
    n_in = len(call.node.inputs)
    x, others, params = operands[0], operands[1:n_in], operands[n_in:]
    expand, project = parts(call.node, x.shape)
    first = len(expand.params)
    hidden = _PARTS[expand.op](replace(call, node=expand), x, *params[:first])
    return _PARTS[project.op](replace(call, node=project), hidden, *others, *params[first:])


POINTWISE_MLP_IMPLS: dict[str, Impl] = {"pointwise_mlp": _pointwise_mlp}
