"""Binders of the residual ops (cnnc/ir/residual.py): node -> launches, and their table `BINDERS`.

A residual node runs its layer's own binding (algorithms.py or bind_fused.py, with whatever
kernel variant the layer picks: implicit GEMM, im2col + GEMM, Winograd; batchnorm_train_add:
batchnorm_train's, bind_gradients.py) with the residual added in the epilogue of the launches
that store the node's value: those get -D HAS_RESIDUAL=1 and the residual tensor as one more
argument, last (kernels/common.h: RESIDUAL_PARAM and `epilogue`, which adds it after the bias
and before the activation). Only kernels that declare RESIDUAL_PARAM may store a residual
node's value; any other is a binding bug, reported, never run without it.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.backends.opencl.algorithms import BINDERS as ALGORITHM_BINDERS
from cnnc.backends.opencl.bind_fused import BINDERS as FUSED_BINDERS
from cnnc.backends.opencl.bind_gradients import bind_batchnorm_train
from cnnc.backends.opencl.launches import BindContext, Binder, Launch, NodeBinding, Value
from cnnc.errors import InternalError
from cnnc.ir.graph import Node
from cnnc.ir.residual import LAYER_OF

# The kernels whose epilogue adds a residual (their last parameter is RESIDUAL_PARAM).
RESIDUAL_KERNELS = frozenset({
    ("conv2d.cl", "conv2d_forward"),
    ("conv2d.cl", "conv2d_parts_finish"),
    ("conv2d_rows.cl", "conv2d_rows"),
    ("gemm.cl", "matmul"),
    ("winograd.cl", "winograd_output"),
    ("winograd.cl", "winograd_fused"),
    ("batchnorm.cl", "batchnorm_train"),
})


def with_residual(lau: Launch, residual: Value) -> Launch:
    """`lau` adding `residual` to what it stores (a kernel of RESIDUAL_KERNELS)."""
    if (lau.file, lau.kernel) not in RESIDUAL_KERNELS:
        raise InternalError(f"{lau.file}:{lau.kernel} cannot add a residual as it stores")
    defines = tuple(sorted({**lau.define_map, "HAS_RESIDUAL": 1}.items()))
    return replace(lau, defines=defines, args=(*lau.args, residual))


def _with_residual_stores(node: Node, inner: NodeBinding, other: str, layer_op: str
                          ) -> NodeBinding:
    out = Value(node.name)
    launches = tuple(with_residual(lau, Value(other)) if out in lau.args else lau
                     for lau in inner.launches)
    if launches == inner.launches:
        raise InternalError(f"node '{node.name}': no launch of its {layer_op} binding stores "
                            "its value")
    return replace(inner, launches=launches)


def residual(layer_op: str, layer_binder: Binder) -> Binder:
    def bind(node: Node, ctx: BindContext) -> NodeBinding:
        *inputs, other = node.inputs
        inner = layer_binder(replace(node, op=layer_op, inputs=tuple(inputs)), ctx)
        return _with_residual_stores(node, inner, other, layer_op)
    return bind


def bind_batchnorm_train_add(node: Node, ctx: BindContext) -> NodeBinding:
    """batchnorm_train's binding (its inputs without the residual, the third)."""
    x, stats, other, *affine = node.inputs
    bn = replace(node, op="batchnorm_train", inputs=(x, stats, *affine))
    return _with_residual_stores(node, bind_batchnorm_train(bn, ctx), other, "batchnorm_train")


_LAYERS = {**ALGORITHM_BINDERS, **FUSED_BINDERS}
BINDERS: dict[str, Binder] = {op: residual(layer, _LAYERS[layer]) for op, layer in LAYER_OF.items()}
BINDERS["batchnorm_train_add"] = bind_batchnorm_train_add
