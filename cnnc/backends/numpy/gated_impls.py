"""NumPy implementations of the gated convolutions (cnnc/ir/gated.py), keyed by op name: the
reference for a squeeze-excite scale folded into the convolution after it (the layer's own
implementation on x * gate, broadcast as Keras' Multiply does)."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.fused_impls import FUSED_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.backends.numpy.residual_impls import RESIDUAL_IMPLS
from cnnc.ir.broadcast import padded
from cnnc.ir.gated import LAYER_OF_GATED


def _gated(layer: str) -> Impl:
    run_layer = {**LAYER_IMPLS, **FUSED_IMPLS, **RESIDUAL_IMPLS}[layer]

    def impl(call: Call, x: np.ndarray, gate: np.ndarray, *rest: np.ndarray) -> np.ndarray:
        scaled = x * gate.reshape(padded(gate.shape, x.ndim))
        return run_layer(call, scaled, *rest)
    return impl


GATED_IMPLS: dict[str, Impl] = {op: _gated(layer) for op, layer in LAYER_OF_GATED.items()}
