"""The tuner binds a fused node as the layer its op stands for (cnnc/tune/space.py as_layer,
reading `OpDef.base` through layer_of), as bind_fused.py and bind_residual.py bind it, unless
its op has algorithms of its own (depthwise_pointwise: one kernel, not its separable layer's)."""

from __future__ import annotations

from dataclasses import replace

from cnnc.backends.opencl.algorithms import TUNABLE_OPS
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, layer_of
from cnnc.tune.space import as_layer


def test_the_tuner_binds_every_fused_op_as_its_layer():
    for name, op in OPS.items():
        node = Node("n", name, inputs=("x",), attrs=Attrs())
        own = op.base is None or name in TUNABLE_OPS
        want = node if own else replace(node, op=layer_of(name))
        assert as_layer(node) == want, name
    pinned = {"conv2d_bn": "conv2d", "conv2d_bn_add": "conv2d", "dense_bn_add": "dense",
              # once missing from the tuner's hand-written inverse of FOLDED_LAYER
              "depthwise_conv2d_bn": "depthwise_conv2d"}
    pinned["depthwise_pointwise"] = "depthwise_pointwise"
    for op, layer in pinned.items():
        assert as_layer(Node("n", op, inputs=("x", "y"), attrs=Attrs())).op == layer
