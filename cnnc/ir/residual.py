"""Residual ops: a layer with the residual add after it fused in, made by the passes
(cnnc/passes/fuse_residual.py for inference, fuse_training.py for training), never written in a
spec.

``conv2d_add``, ``conv2d_bn_add``, ``dense_add`` and ``dense_bn_add`` compute
act(layer(x) + other): the layer's own result (conv2d, dense, or one with a batch norm folded in,
cnnc/ir/fused.py) before its activation, plus `other`, a tensor of the output's shape, then the
activation. Inputs: (x, other); parameters, arguments and FLOPs: the layer's, plus one add per
output. A residual block's join, conv -> batchnorm -> add -> relu, is then one launch that
writes the block's output once, instead of three passes over memory. The activation must be
element-wise: softmax spans a row of outputs, more than the epilogue that adds `other` sees.

``batchnorm_train_add``, in training graphs: act(batchnorm_train(x, stats, ...) + other), inputs
(x, stats, other[, gamma][, beta]) (batchnorm_train's with the residual third), one pass over
memory instead of three (normalise, add, activate). The backward pass never reads the
normalised value nor the sum before the activation (batch norm's gradients read x, its
statistics and dy; add passes dy through; activation_grad reads the activation's output).
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import fused  # noqa: F401  (registers the folded layers residual ops build on)
from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.args import ArgError, Attrs
from cnnc.ir.layers import ACTIVATION_ARG, BN_NORMALISE_ARGS
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register, row_terms
from cnnc.ir.shapes import Shape, numel, shape_str

RESIDUAL_OF: dict[str, str] = {}
"""The residual op each layer (or folded layer) becomes with the add after it (registered
below; each residual op's `base` is its layer)."""


def _residual_op(layer: str) -> OpDef:
    base = OPS[layer]

    def infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
        out = base.infer(attrs, shapes[:1])
        if shapes[1] != out:
            raise ShapeError(
                f"the residual {shape_str(shapes[1])} differs from the layer's output "
                f"{shape_str(out)}")
        return out

    def params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
        return base.params(attrs, shapes[:1])

    def flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
        return base.flops(attrs, shapes[:1], out) + numel(out)

    def check(attrs: Attrs) -> None:
        base.check(attrs)
        _check_elementwise(attrs)

    def reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
        return base.reduction(attrs, shapes[:1]) + 1

    return OpDef(
        name=f"{layer}_add", group="fused", args=base.args, arity=(2, 2), infer=infer,
        params=params, flops=flops, check=check, reduction=reduction, fuses_activation=True,
        base=layer,
        doc=f"{layer} plus a residual tensor of its output's shape (the add after it), then "
            "the activation, as one node.",
    )


for _layer in ("conv2d", "conv2d_bn", "dense", "dense_bn"):
    RESIDUAL_OF[_layer] = register(_residual_op(_layer)).name

LAYER_OF = {residual: OPS[residual].base for residual in RESIDUAL_OF.values()}
"""The layer op a residual op adds to (its inputs but the last, same arguments)."""


def _check_elementwise(attrs: Attrs) -> None:
    if not ACTIVATIONS[attrs["activation"]].elementwise:
        raise ArgError(
            f"activation '{attrs['activation']}' spans a row and cannot follow a fused "
            "residual add; expected an element-wise activation")


def _bn_residual_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    x, _, other = shapes[:3]
    if other != x:
        raise ShapeError(f"the residual {shape_str(other)} differs from the normalised input "
                         f"{shape_str(x)}")
    return x


register(OpDef(
    name="batchnorm_train_add", group="fused", args=(*BN_NORMALISE_ARGS, ACTIVATION_ARG),
    arity=(3, 5), infer=_bn_residual_infer, check=_check_elementwise, reduction=row_terms(0),
    fuses_activation=True, base="batchnorm_train",
    doc="activation(batchnorm_train(x, stats[, gamma][, beta]) + other) in training graphs. "
        "Inputs (x, stats, other[, gamma][, beta]).",
))
