"""Binding of separable_conv2d (cnnc/ir/separable.py): its two parts' bindings run in turn,
the depthwise part (its algorithms, algorithms.py) into a scratch buffer that the 1x1 conv2d (conv2d's
algorithms, the GEMM the tuner sizes) reads; the two parts' own scratch buffers follow it."""

from __future__ import annotations

from dataclasses import replace

from cnnc.backends.opencl import algorithms
from cnnc.backends.opencl.launches import (
    Arg,
    BindContext,
    Binder,
    NodeBinding,
    Value,
    Workspace,
)
from cnnc.ir.graph import Node, infer_node
from cnnc.ir.separable import separable_parts


def _moved(binding: NodeBinding, middle: str, first: int) -> tuple:
    """The binding's launches with `middle` read from scratch buffer 0 and its own scratch
    buffers moved to `first` on."""
    def arg(a: Arg) -> Arg:
        if isinstance(a, Value) and a.name == middle:
            return Workspace(0)
        if isinstance(a, Workspace):
            return Workspace(first + a.index)
        return a

    return tuple(replace(launch, args=tuple(arg(a) for a in launch.args))
                 for launch in binding.launches)


def bind_separable_conv2d(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    dw_attrs, pw_attrs = separable_parts(node.attrs)
    middle = f"{node.name}/depthwise"
    dw = Node(name=middle, op="depthwise_conv2d", inputs=(x,), attrs=dw_attrs,
              params=node.params[:1])
    dw = replace(dw, shape=infer_node(dw, [ctx.graph.shape_of(x)]))
    pw = replace(node, op="conv2d", inputs=(middle,), params=node.params[1:], attrs=pw_attrs)
    sub = replace(ctx, graph=ctx.graph.with_nodes((*ctx.graph.nodes, dw)))
    first = algorithms.BINDERS["depthwise_conv2d"](dw, sub)
    second = algorithms.BINDERS["conv2d"](pw, sub)
    launches = (*_moved(first, middle, 1),
                *_moved(second, middle, 1 + len(first.workspaces)))
    return NodeBinding(launches, workspaces=(sub.numel(middle), *first.workspaces,
                                             *second.workspaces),
                       zeros=max(first.zeros, second.zeros))


BINDERS: dict[str, Binder] = {"separable_conv2d": bind_separable_conv2d}
