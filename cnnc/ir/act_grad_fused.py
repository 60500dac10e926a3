"""Fused gradient ops: an activation's gradient folded into the op that produces its dy, made by
the training pass cnnc/passes/fuse_act_grad.py, never written in a spec.

``<op>_act_grad`` (conv2d_grad_input, depthwise_conv2d_grad_input, dense_grad_input, add)
computes activation_grad(v, <op>(inputs)): the op's own result is the dy of a layer's
activation, and dx = act'(v) * dy is applied as that result is stored, so the backward pass makes
no pass of its own over memory for the activation (the split of cnnc/passes/training_mode.py
left one per silu/gelu/hard_swish/mish layer, and relu's gradient was one too). Inputs: the
op's, then `v` (what activation_grad reads: y, or x for a `from_input` activation or a
parameterised relu). Arguments: the op's, then activation_grad's. FLOPs: none, as for the
gradient ops.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import gradients  # noqa: F401  (registers the ops these build on)
from cnnc.ir.args import Attrs
from cnnc.ir.ops import OPS, OpDef, register
from cnnc.ir.shapes import Shape, shape_str

ACT_GRAD_OF: dict[str, str] = {}
"""The fused op each dy producer becomes with the activation_grad after it."""

BASE_OF: dict[str, str] = {}
"""The producer op a fused op computes before the activation's gradient (its inputs but the
last, its arguments but activation_grad's)."""


def _fused_op(base_name: str) -> OpDef:
    base, grad = OPS[base_name], OPS["activation_grad"]
    clash = {a.name for a in base.args} & {a.name for a in grad.args}
    if clash:
        raise ValueError(f"{base_name} and activation_grad share arguments {sorted(clash)}")
    lo, hi = base.arity

    def infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
        out = base.infer(attrs, shapes[:-1])
        if shapes[-1] != out:
            raise ShapeError(f"the activation's value {shape_str(shapes[-1])} differs from the "
                             f"gradient {shape_str(out)}")
        return out

    def check(attrs: Attrs) -> None:
        base.check(attrs)
        grad.check(attrs)

    def reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
        return base.reduction(attrs, shapes[:-1])

    return OpDef(
        name=f"{base_name}_act_grad", group="gradient", args=(*base.args, *grad.args),
        arity=(lo + 1, None if hi is None else hi + 1), infer=infer, check=check,
        reduction=reduction, base=base_name,
        doc=f"activation_grad(v, {base_name}(...)) as one node: the activation's derivative "
            f"applied as {base_name} stores. Inputs ({base_name}'s, v).",
    )


for _base in ("conv2d_grad_input", "depthwise_conv2d_grad_input", "dense_grad_input", "add"):
    ACT_GRAD_OF[_base] = register(_fused_op(_base)).name
    BASE_OF[ACT_GRAD_OF[_base]] = _base

GRAD_ARG_NAMES: tuple[str, ...] = tuple(a.name for a in OPS["activation_grad"].args)
"""The arguments a fused op takes from activation_grad."""
