"""Binders of the depthwise convolutions' gradients: node -> launches, and their table
`BINDERS`. Each is bound as the grouped conv2d gradient it is, by conv2d's algorithms
(algorithms.py): the (KH, KW, C, M) kernel is the (KH, KW, 1, C*M) kernel of that conv2d, byte
for byte. The forward op is tunable, with its own algorithms (bind_depthwise_direct.py)."""

from __future__ import annotations

from dataclasses import replace

from cnnc.backends.opencl.algorithms import bind_by_algorithm
from cnnc.backends.opencl.launches import BindContext, Binder, NodeBinding
from cnnc.ir.graph import Node
from cnnc.ir.layers import depthwise_as_conv2d


def _bind_gradient_as_conv2d(node: Node, ctx: BindContext) -> NodeBinding:
    """The grouped conv2d gradient node a depthwise one is, bound."""
    shape = node.attrs["input_shape"]
    attrs = depthwise_as_conv2d(node.attrs, shape[-1]).replace(input_shape=shape)
    op = node.op.replace("depthwise_conv2d", "conv2d")
    return bind_by_algorithm(replace(node, op=op, attrs=attrs), ctx)


BINDERS: dict[str, Binder] = {
    "depthwise_conv2d_grad_input": _bind_gradient_as_conv2d,
    "depthwise_conv2d_grad_kernel": _bind_gradient_as_conv2d,
}
