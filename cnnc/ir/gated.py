"""Gated convolutions (cnnc/ir op table): a squeeze-excite scale folded into the convolution
that reads it, made by cnnc/passes/fold_gate.py at inference, never written in a spec.

``conv2d_gated``, ``conv2d_bn_gated``, ``conv2d_add_gated`` and ``conv2d_bn_add_gated`` compute
their `base` layer on x * gate: inputs (x, gate, *the layer's other inputs) (conv2d_add's
residual third), the gate broadcasting to x like a merge (Keras' rule: a (1, 1, C) gate per
example and channel, or any shape NumPy broadcasts on the non-batch axes). Since
y[n, p, f] = sum_c x[n, p, c] g[n, c] w[c, f], the convolution scales each input value as it
loads it, and the product x * gate is never written: a squeeze-excite block's scale costs no
pass over memory of its own. Parameters, arguments and the activation: the layer's.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import residual  # noqa: F401  (registers the layers gated ops build on)
from cnnc.ir.args import Attrs
from cnnc.ir.broadcast import broadcast_shapes
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape, numel, shape_str

GATED_OF: dict[str, str] = {}
"""The gated op each convolution (folded, residual) becomes with a gate on its input."""


def _layer_shapes(shapes: tuple[Shape, ...]) -> tuple[Shape, ...]:
    """The layer's own input shapes: all but the gate (the second)."""
    return (shapes[0], *shapes[2:])


def _gated_op(layer: str) -> OpDef:
    base = OPS[layer]

    def infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
        x, gate = shapes[:2]
        try:
            fits = broadcast_shapes((x, gate)) == x
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(f"the gate {shape_str(gate)} does not broadcast to the "
                             f"convolution's input {shape_str(x)}")
        return base.infer(attrs, _layer_shapes(shapes))

    def params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
        return base.params(attrs, _layer_shapes(shapes))

    def flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
        # the scale: one multiply per input value (the merge's FLOPs, now in the prologue)
        return base.flops(attrs, _layer_shapes(shapes), out) + numel(shapes[0])

    def reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
        return base.reduction(attrs, _layer_shapes(shapes))

    lo, hi = base.arity
    return OpDef(
        name=f"{layer}_gated", group="fused", args=base.args, arity=(lo + 1, hi + 1),
        infer=infer, params=params, flops=flops, check=base.check, reduction=reduction,
        fuses_activation=True, base=layer,
        doc=f"{layer} on its input times a broadcast gate (a squeeze-excite scale folded in, "
            "inference). Inputs (x, gate, ...the layer's others).",
    )


for _layer in ("conv2d", "conv2d_bn", "conv2d_add", "conv2d_bn_add"):
    GATED_OF[_layer] = register(_gated_op(_layer)).name

LAYER_OF_GATED = {gated: layer for layer, gated in GATED_OF.items()}
"""The layer op a gated op runs on the scaled input (its inputs without the second)."""
