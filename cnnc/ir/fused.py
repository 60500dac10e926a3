"""Fused ops: what the inference passes make of two layers, never written in a spec.

- ``conv2d_bn``, ``depthwise_conv2d_bn`` and ``dense_bn``: a convolution (or dense layer)
  followed by batch norm at inference (cnnc/passes/fold_batchnorm.py), the layer being the
  op's `base`. With s = gamma / sqrt(moving_variance + epsilon) per output channel, the result
  is the layer's with kernel w * s (per output channel) and bias (b - moving_mean) * s + beta,
  then the activation. The folded kernel and bias are computed from the live state: by the
  NumPy backend on every run, by the OpenCL backend again whenever the state changed (a hoisted
  launch), so they are never stale after training or loading weights.
  Parameters: the layer's (kernel[, bias]) then the batch norm's ([gamma][, beta],
  moving_mean, moving_variance), the layer's and the batch norm's own state.
"""

from __future__ import annotations

from cnnc.ir.args import Attrs

# Importing cnnc.ir.layers registers the layer ops whose rules the fused ops reuse.
from cnnc.ir.layers import BN_NORMALISE_ARGS
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape


def _with_bn_params(layer: str):
    layer_params = OPS[layer].params

    def params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
        channels = OPS[layer].infer(attrs, shapes)[-1]  # output channels
        return (*layer_params(attrs, shapes), *OPS["batchnorm"].params(attrs, ((channels,),)))
    return params


BN_FOLD_ARGS = BN_NORMALISE_ARGS

FOLDED_LAYER: dict[str, str] = {}
"""The fused op a layer and the batch norm after it become (each such op's `base`)."""


def _register_folded(layer: str, doc: str) -> None:
    """`<layer>_bn`: the layer's arguments, then the batch norm's; its shape, check, FLOPs and
    reduction are the layer's (the fold is per weight, not per example)."""
    base = OPS[layer]
    op = register(OpDef(
        name=f"{layer}_bn", group="fused", args=(*base.args, *BN_FOLD_ARGS), arity=(1, 1),
        infer=base.infer, params=_with_bn_params(layer), flops=base.flops, check=base.check,
        reduction=base.reduction, fuses_activation=True, base=layer,
        doc=f"{layer} then batchnorm (inference), {doc}, then the activation.",
    ))
    FOLDED_LAYER[layer] = op.name


_register_folded("conv2d", "as one convolution with the batch norm folded into its kernel and "
                 "bias")
_register_folded("depthwise_conv2d", "with the batch norm folded into its kernel (output "
                 "channel c * depth_multiplier + m) and bias")
_register_folded("dense", "as one matrix product with the batch norm folded into its kernel "
                 "and bias")
