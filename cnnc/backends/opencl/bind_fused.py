"""Binders of the fused ops (cnnc/ir/fused.py): node -> launches, and their table `BINDERS`.

conv2d_bn, depthwise_conv2d_bn and dense_bn run the binding of their `base` layer (algorithms.py,
with whatever kernel variant it picks) on a folded kernel and bias: one small
batchnorm.cl:batchnorm_fold launch first computes them from the live state into two
workspaces, and every argument of the layer's launches that named the kernel or the bias reads
those instead. The fold is a `once` launch with constant workspaces: the runtime runs it again
only after the weights change (a training step, loading or setting weights), so the folded
weights are never stale and not recomputed by every forward pass.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.backends.opencl.algorithms import BINDERS as ALGORITHM_BINDERS
from cnnc.backends.opencl.launches import (
    Arg,
    BindContext,
    Binder,
    Launch,
    NodeBinding,
    Value,
    Workspace,
)
from cnnc.backends.opencl.primitives import bn_fold
from cnnc.ir.args import Attrs
from cnnc.ir.fused import BN_FOLD_ARGS, FOLDED_LAYER
from cnnc.ir.graph import Node

_BN_ATTRS = tuple(a.name for a in BN_FOLD_ARGS)


def _layer_node(node: Node, layer_op: str) -> tuple[Node, str, str | None, tuple[str, ...]]:
    """The layer's node as the layer binder sees it (always with a bias: the folded one),
    the kernel and bias names its launches will read, and the batch norm's parameters."""
    n_layer = 2 if node.attrs["use_bias"] else 1
    kernel, bias = node.params[0], node.params[1] if n_layer == 2 else None
    # A name no tensor has: the layer's launches read the folded bias through it.
    bias_arg = bias or f"{node.name}/folded_bias"
    attrs = Attrs({k: v for k, v in node.attrs.items() if k not in _BN_ATTRS}).replace(
        use_bias=True)
    layer = replace(node, op=layer_op, attrs=attrs, params=(kernel, bias_arg))
    return layer, bias_arg, bias, node.params[n_layer:]


def _redirect(lau: Launch, names: dict[str, Arg]) -> Launch:
    args = tuple(names.get(a.name, a) if isinstance(a, Value) else a for a in lau.args)
    return lau if args == lau.args else replace(lau, args=args)


def folded(layer_op: str, layer_binder: Binder) -> Binder:
    def bind(node: Node, ctx: BindContext) -> NodeBinding:
        layer, bias_arg, _, _ = _layer_node(node, layer_op)
        inner = layer_binder(layer, ctx)
        w, b = Workspace(len(inner.workspaces)), Workspace(len(inner.workspaces) + 1)
        cols = ctx.shape(node.name)[-1]
        fold, size = bn_fold(node, ctx, cols, w, b)
        names = {node.params[0]: w, bias_arg: b}
        launches = (fold, *(_redirect(lau, names) for lau in inner.launches))
        return replace(inner, launches=launches, workspaces=(*inner.workspaces, size, cols),
                       constants=(*inner.constants, w.index, b.index))
    return bind


BINDERS: dict[str, Binder] = {op: folded(layer, ALGORITHM_BINDERS[layer])
                               for layer, op in FOLDED_LAYER.items()}
