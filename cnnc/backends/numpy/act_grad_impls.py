"""NumPy implementations of the fused gradient ops (cnnc/ir/act_grad_fused.py), keyed by op
name: the reference for an activation's gradient fused into its dy's producer (the producer's
own implementation, then activation_grad)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnc.backends.numpy.activations import activation_grad
from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.gradient_impls import GRADIENT_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.act_grad_fused import BASE_OF


def _act_grad(base: str) -> Impl:
    run_base = {**LAYER_IMPLS, **GRADIENT_IMPLS}[base]

    def impl(call: Call, *operands: np.ndarray) -> np.ndarray:
        *inputs, v = operands
        dy = run_base(replace(call, node=replace(call.node, op=base)), *inputs)
        return activation_grad(call.attrs, v, dy)
    return impl


ACT_GRAD_IMPLS: dict[str, Impl] = {op: _act_grad(base) for op, base in BASE_OF.items()}
