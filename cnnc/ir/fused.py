"""Fused ops: what the inference passes make of two layers, never written in a spec.

- ``conv2d_bn``, ``depthwise_conv2d_bn`` and ``dense_bn``: a convolution (or dense layer) followed by batch norm at
  inference (cnnc/passes/fold_batchnorm.py). With s = gamma / sqrt(moving_variance + epsilon)
  per output channel, the result is the layer's with kernel w * s (per output channel) and bias
  (b - moving_mean) * s + beta, then the activation. The folded kernel and bias are computed
  from the live state on every run (a backend never keeps them), so they are never stale after
  training or loading weights. Parameters: the layer's (kernel[, bias]) then the batch norm's
  ([gamma][, beta], moving_mean, moving_variance), the layer's and the batch norm's own state.
"""

from __future__ import annotations

from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs

# Importing cnnc.ir.layers registers the layer ops whose rules the fused ops reuse.
from cnnc.ir.layers import (
    ACTIVATION_ARG,
    BN_NORMALISE_ARGS,
    CONV_GEOMETRY_ARGS,
    DEPTHWISE_GEOMETRY_ARGS,
)
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape


def _with_bn_params(layer: str):
    layer_params = OPS[layer].params

    def params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
        channels = OPS[layer].infer(attrs, shapes)[-1]  # output channels
        return (*layer_params(attrs, shapes), *OPS["batchnorm"].params(attrs, ((channels,),)))
    return params


BN_FOLD_ARGS = BN_NORMALISE_ARGS

register(OpDef(
    name="conv2d_bn", group="fused",
    args=(*CONV_GEOMETRY_ARGS, ACTIVATION_ARG, Arg("use_bias", A.boolean, True), *BN_FOLD_ARGS),
    arity=(1, 1), infer=OPS["conv2d"].infer, params=_with_bn_params("conv2d"),
    # The fold is per weight, not per example: the FLOPs per example are the convolution's.
    flops=OPS["conv2d"].flops, check=OPS["conv2d"].check, reduction=OPS["conv2d"].reduction,
    fuses_activation=True,
    doc="conv2d then batchnorm (inference), as one convolution with the batch norm folded into "
        "its kernel and bias, then the activation.",
))

register(OpDef(
    name="depthwise_conv2d_bn", group="fused",
    args=(*DEPTHWISE_GEOMETRY_ARGS, ACTIVATION_ARG, Arg("use_bias", A.boolean, True),
          *BN_FOLD_ARGS),
    arity=(1, 1), infer=OPS["depthwise_conv2d"].infer, params=_with_bn_params("depthwise_conv2d"),
    flops=OPS["depthwise_conv2d"].flops, check=OPS["depthwise_conv2d"].check,
    reduction=OPS["depthwise_conv2d"].reduction, fuses_activation=True,
    doc="depthwise_conv2d then batchnorm (inference), with the batch norm folded into its "
        "kernel (output channel c * depth_multiplier + m) and bias, then the activation.",
))

register(OpDef(
    name="dense_bn", group="fused",
    args=(Arg("units", A.positive_int, positional=True), ACTIVATION_ARG,
          Arg("use_bias", A.boolean, True), *BN_FOLD_ARGS),
    arity=(1, 1), infer=OPS["dense"].infer, params=_with_bn_params("dense"),
    flops=OPS["dense"].flops, reduction=OPS["dense"].reduction, fuses_activation=True,
    doc="dense then batchnorm (inference), as one matrix product with the batch norm folded into "
        "its kernel and bias, then the activation.",
))

FOLDED_LAYER = {"conv2d": "conv2d_bn", "depthwise_conv2d": "depthwise_conv2d_bn",
                "dense": "dense_bn"}
"""The fused op a layer and the batch norm after it become."""
