"""NumPy implementations of the residual ops (cnnc/ir/residual.py), keyed by op name: the
reference for a layer with the add after it fused in (the layer's own implementation, left
linear, plus the residual operand, then the activation)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.activations import activate
from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.fused_impls import FUSED_IMPLS
from cnnc.backends.numpy.gradient_impls import GRADIENT_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.residual import LAYER_OF


def _residual(layer: str) -> Impl:
    run_layer = {**LAYER_IMPLS, **FUSED_IMPLS}[layer]

    def impl(call: Call, x: np.ndarray, other: np.ndarray, *params: np.ndarray) -> np.ndarray:
        linear = replace(call.node, attrs=call.attrs.replace(activation="linear"))
        y = run_layer(replace(call, node=linear), x, *params)
        return activate(call.attrs["activation"], y + other)
    return impl


def _batchnorm_train_add(call: Call, x: np.ndarray, stats: np.ndarray, other: np.ndarray,
                         *affine: np.ndarray) -> np.ndarray:
    linear = replace(call.node, attrs=call.attrs.replace(activation="linear"))
    y = GRADIENT_IMPLS["batchnorm_train"](replace(call, node=linear), x, stats, *affine)
    return activate(call.attrs["activation"], y + other)


RESIDUAL_IMPLS: dict[str, Impl] = {op: _residual(layer) for op, layer in LAYER_OF.items()}
RESIDUAL_IMPLS["batchnorm_train_add"] = _batchnorm_train_add
