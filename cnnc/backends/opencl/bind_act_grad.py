"""Binders of the fused gradient ops (cnnc/ir/act_grad_fused.py): node -> launches, and their
table `BINDERS`.

A fused node runs its producer's own binding (algorithms.py, bind_layers.py:
whatever algorithm and tuned variant the producer picks) with the activation's derivative
applied where the value is stored:
- a launch of ACT_GRAD_KERNELS that stores the whole value gets -D HAS_ACT_GRAD=1 with the
  activation's -D options and `v` as its last argument, in the residual's place
  (kernels/common.h: `epilogue` returns ACTIVATE_GRAD(v[at], value) then);
- a two-input add becomes elementwise.cl's add_act_grad (one pass: a + b, then the derivative);
- any other binding (a split-K sum, the strided phases, a kernel added later) writes the
  producer's value to a scratch buffer that one activation_grad launch reads: still correct,
  just the unfused cost.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.backends.opencl import bind_layers
from cnnc.backends.opencl.algorithms import BINDERS as ALGORITHM_BINDERS
from cnnc.backends.opencl.launches import (
    Arg,
    BindContext,
    Binder,
    Int,
    Launch,
    NodeBinding,
    Value,
    Workspace,
    elementwise_launch,
)
from cnnc.backends.opencl.primitives import activation_defines
from cnnc.ir.act_grad_fused import BASE_OF, GRAD_ARG_NAMES
from cnnc.ir.activations import kernel_defines, parameters
from cnnc.ir.graph import Node

# The kernels whose epilogue can apply an activation's derivative (they end their parameter list
# with RESIDUAL_PARAM and store through common.h's `epilogue` with the flat index `at`).
ACT_GRAD_KERNELS = frozenset({
    ("conv2d.cl", "conv2d_grad_input"),
    ("gemm.cl", "matmul"),
    ("winograd.cl", "winograd_output"),
    ("winograd.cl", "winograd_fused"),
})


def _act_defines(node: Node) -> dict[str, int]:
    return kernel_defines(node.attrs["activation"], parameters(node.attrs))


def _fusable(lau: Launch) -> bool:
    defines = lau.define_map
    return ((lau.file, lau.kernel) in ACT_GRAD_KERNELS and not defines.get("HAS_RESIDUAL")
            and not any(k.startswith("ACT_") for k in defines))


def _replace_arg(lau: Launch, old: Arg, new: Arg) -> Launch:
    return replace(lau, args=tuple(new if a == old else a for a in lau.args))


def _fused(node: Node, ctx: BindContext, inner: NodeBinding) -> NodeBinding:
    v, out = Value(node.inputs[-1]), Value(node.name)
    stores = [i for i, lau in enumerate(inner.launches) if out in lau.args]
    if len(stores) == 1 and inner.view_of is None:
        i = stores[0]
        lau = inner.launches[i]
        new: Launch | None = None
        if _fusable(lau):
            defines = {**lau.define_map, **_act_defines(node), "HAS_ACT_GRAD": 1}
            new = replace(lau, defines=tuple(sorted(defines.items())), args=(*lau.args, v))
        elif (lau.file, lau.kernel) == ("elementwise.cl", "add"):
            a, b, _, n = lau.args
            defines = {**lau.define_map, **activation_defines(
                node.attrs["activation"], parameters(node.attrs), ctx.target)}
            new = replace(lau, kernel="add_act_grad", defines=tuple(sorted(defines.items())),
                          args=(a, b, v, out, n))
        if new is not None:
            return replace(inner, launches=(*inner.launches[:i], new, *inner.launches[i + 1:]))
    # Unfused: the producer's value into a scratch buffer, then the derivative.
    scratch = Workspace(len(inner.workspaces))
    n = ctx.numel(node.name)
    launches = tuple(_replace_arg(lau, out, scratch) for lau in inner.launches)
    grad = elementwise_launch("elementwise.cl", "activation_grad", n, (v, scratch, out, Int(n)),
                              ctx.target, activation_defines(node.attrs["activation"],
                                                             parameters(node.attrs), ctx.target))
    return replace(inner, launches=(*launches, grad), workspaces=(*inner.workspaces, n))


def act_grad(base: str, base_binder: Binder) -> Binder:
    def bind(node: Node, ctx: BindContext) -> NodeBinding:
        attrs = node.attrs
        inner_node = replace(node, op=base, inputs=node.inputs[:-1],
                             attrs=type(attrs)({k: attrs[k] for k in attrs
                                                if k not in GRAD_ARG_NAMES}))
        return _fused(node, ctx, base_binder(inner_node, ctx))
    return bind


_PRODUCERS = {**bind_layers.BINDERS, **ALGORITHM_BINDERS}  # depthwise: algorithms.py
BINDERS: dict[str, Binder] = {op: act_grad(base, _PRODUCERS[base])
                              for op, base in BASE_OF.items()}
