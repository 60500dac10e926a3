"""Binders of the depthwise convolutions and their gradients: node -> launches, and their table
`BINDERS`. A depthwise convolution is bound as the grouped conv2d it is, by conv2d's algorithms
(algorithms.py): its (KH, KW, C, M) kernel is the (KH, KW, 1, C*M) kernel of that conv2d, byte
for byte."""

from __future__ import annotations

from dataclasses import replace

from cnnc.backends.opencl.algorithms import bind_by_algorithm
from cnnc.backends.opencl.launches import BindContext, Binder, NodeBinding
from cnnc.ir.graph import Node
from cnnc.ir.layers import depthwise_as_conv2d


def bind_depthwise_conv2d(node: Node, ctx: BindContext) -> NodeBinding:
    attrs = depthwise_as_conv2d(node.attrs, ctx.shape(node.inputs[0])[-1])
    return bind_by_algorithm(replace(node, op="conv2d", attrs=attrs), ctx)


def _bind_gradient_as_conv2d(node: Node, ctx: BindContext) -> NodeBinding:
    """The grouped conv2d gradient node a depthwise one is, bound."""
    shape = node.attrs["input_shape"]
    attrs = depthwise_as_conv2d(node.attrs, shape[-1]).replace(input_shape=shape)
    op = node.op.replace("depthwise_conv2d", "conv2d")
    return bind_by_algorithm(replace(node, op=op, attrs=attrs), ctx)


BINDERS: dict[str, Binder] = {
    "depthwise_conv2d": bind_depthwise_conv2d,
    "depthwise_conv2d_grad_input": _bind_gradient_as_conv2d,
    "depthwise_conv2d_grad_kernel": _bind_gradient_as_conv2d,
}
