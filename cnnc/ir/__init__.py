"""The intermediate representation: the op table, graphs, shape inference and verification."""

from cnnc.ir import (  # noqa: F401  (fill the op table)
    act_grad_fused,
    avgpool_dense,
    bn_act_grad,
    channel_shuffle,
    channel_slice,
    clipping,
    concat_shuffle,
    conv_concat,
    conv_maxpool,
    conv_transpose,
    dense_pair,
    depthwise_layer_norm,
    depthwise_pointwise,
    distributed_ops,
    ema,
    excite_grad,
    fused,
    gated,
    gathered,
    global_maxpool,
    gradients,
    layer_norm,
    layers,
    losses,
    lrn,
    merges,
    pointwise_avgpool,
    pointwise_depthwise,
    pool_concat,
    preprocessing,
    regularizers,
    resample,
    reshapes,
    residual,
    separable,
    squeeze_excite,
    updates,
)
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node, StateSpec, infer_shapes, verify
from cnnc.ir.ops import OPS, OpDef, ParamSpec, Shape

__all__ = [
    "OPS", "Attrs", "Graph", "Node", "OpDef", "ParamSpec", "Shape", "StateSpec", "infer_shapes",
    "verify",
]
