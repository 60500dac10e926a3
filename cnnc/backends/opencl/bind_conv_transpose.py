"""Binding of the transposed convolution ops (cnnc/ir/conv_transpose.py) as the conv2d family.

Each is a conv2d op of the convolution the transposed one inverts, with that convolution's
window given explicitly (primitives.conv_geometry reads attrs["window"]):

    conv2d_transpose              -> conv2d_grad_input, its bias and activation added as it
                                     stores (conv2d.cl)
    conv2d_transpose_grad_input   -> conv2d (no bias, linear)
    conv2d_transpose_grad_kernel  -> conv2d_grad_kernel with its inputs swapped

`as_conv` builds that node; algorithms.py registers each op's algorithms as the conv2d op's
(direct, phases), wrapped by `on_conv`, so they are GEMMs the tuner sizes like conv2d's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from cnnc.backends.opencl.launches import BindContext, NodeBinding, Value
from cnnc.backends.opencl.primitives import epilogue_act
from cnnc.backends.opencl.tunable import EdgeShape
from cnnc.errors import InternalError
from cnnc.ir.args import Attrs
from cnnc.ir.conv_transpose import transpose_window
from cnnc.ir.graph import Graph, Node
from cnnc.ir.ops import Shape

T = TypeVar("T")


def conv_attrs(attrs: Attrs, x_shape: Shape, y_shape: Shape) -> Attrs:
    """conv2d attributes of the convolution from y (the transposed convolution's output, its
    input) to x (its output), with its explicit window."""
    win = transpose_window(attrs, (x_shape[1], x_shape[2]))
    return Attrs(filters=x_shape[3], kernel_size=attrs["kernel_size"], strides=attrs["strides"],
                 padding="valid", dilation_rate=attrs["dilation_rate"], groups=1,
                 activation="linear", use_bias=False, input_shape=tuple(y_shape[1:]),
                 window=((x_shape[1], x_shape[2]), win.pad_before))


def as_conv(node: Node, ctx: BindContext) -> Node:
    """The conv2d-family node that computes `node` (same name: same value, same variant)."""
    if node.op == "conv2d_transpose":
        x, kernel = node.inputs[0], node.params[0]
        attrs = conv_attrs(node.attrs, ctx.shape(x), ctx.shape(node.name))
        return replace(node, op="conv2d_grad_input", inputs=(x, kernel), params=(),
                       attrs=attrs)
    if node.op == "conv2d_transpose_grad_input":
        dy, kernel = node.inputs
        attrs = conv_attrs(node.attrs, ctx.shape(node.name), ctx.shape(dy))
        return replace(node, op="conv2d", inputs=(dy,), params=(kernel,), attrs=attrs)
    x, dy = node.inputs  # conv2d_transpose_grad_kernel
    attrs = conv_attrs(node.attrs, ctx.shape(x), ctx.shape(dy))
    return replace(node, op="conv2d_grad_kernel", inputs=(dy, x), attrs=attrs)


# The kernels of conv2d.cl that store a transposed convolution's output and take its bias and
# activation as they store (-D HAS_BIAS and ACT_<NAME>, the bias their last argument).
EPILOGUE_KERNELS = ("conv2d_grad_input", "conv2d_grad_input_phases")


def _epilogue(node: Node, ctx: BindContext, binding: NodeBinding) -> NodeBinding:
    """conv2d_transpose: the bias and activation added by the launch that stores the sums (a
    pass of its own over the output cost unet_mini's up2 a third of its GEMM's time on pocl)."""
    if node.op != "conv2d_transpose":
        return binding
    has_bias = node.attrs["use_bias"]
    if not has_bias and node.attrs["activation"] == "linear":
        return binding
    out = Value(node.name)
    extra = {"HAS_BIAS": int(has_bias), **epilogue_act(node)}
    bias = (Value(node.params[1]),) if has_bias else ()
    stores = [i for i, lau in enumerate(binding.launches)
              if lau.kernel in EPILOGUE_KERNELS and out in lau.args]
    if len(stores) != 1:
        raise InternalError(f"node '{node.name}': {len(stores)} launches store the transposed "
                            f"convolution's sums, expected one of {EPILOGUE_KERNELS}")
    launches = list(binding.launches)
    main = launches[stores[0]]
    launches[stores[0]] = replace(
        main, defines=tuple(sorted({**main.define_map, **extra}.items())),
        args=(*main.args, *bias))
    return replace(binding, launches=tuple(launches))


def on_conv(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` (a conv2d-family binder, GEMM, applies or forms rule) for a transposed op's node;
    a binder's launches get the transposed convolution's epilogue."""
    def wrapped(node: Node, ctx: BindContext, *rest: Any) -> T:
        out = fn(as_conv(node, ctx), ctx, *rest)
        return _epilogue(node, ctx, out) if isinstance(out, NodeBinding) else out  # type: ignore
    wrapped.__name__ = f"{fn.__name__}_transposed"
    wrapped.__doc__ = fn.__doc__
    return wrapped


def phases_apply(node: Node, ctx: BindContext, strided: Callable[[Node, BindContext], bool]
                 ) -> bool:
    """conv2d_grad_input's phases where they apply, but not with a stride of 1 on one axis
    only: conv2d.cl's phases with local tiles get that wrong (conv2d's own input gradient too;
    reported, not fixed here), so those take the direct algorithm."""
    conv = as_conv(node, ctx)
    return strided(conv, ctx) and min(conv.attrs["strides"]) > 1


def transpose_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """The node's own shapes at batches 3 and 1 (a partial row block and a single example)."""
    states = graph.state_map
    inputs: dict[str, Shape] = {}
    state: dict[str, Shape] = {}
    for v in node.operands:
        if v in states:
            state[v] = tuple(states[v].shape)
        else:
            inputs[v] = tuple(graph.shape_of(v)[1:])
    return [EdgeShape(f"batch {b}, as built", inputs, state, node.attrs, b) for b in (3, 1)]
