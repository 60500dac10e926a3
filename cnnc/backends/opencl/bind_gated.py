"""Binders of the gated convolutions (cnnc/ir/gated.py): node -> launches, and their table
`BINDERS`.

A gated node runs its layer's own binding (conv2d's direct algorithm, folded and residual ones
around it: bind_fused.py, bind_residual.py) on its input x, and the launch that reads x
(conv2d.cl's conv2d_forward, or im2col where few channels copy the windows out) gets -D GATED=1,
the gate's strides over (N, H, W, C) as -D GS0..GS3 (0 on the axes it is broadcast along; they
depend on the shapes without the batch, so every batch size shares the program) and the gate as
its last argument: the convolution multiplies each input value by the gate as it loads it.
Winograd transforms the input in a launch of its own, which knows no gate: a tuned variant
naming an algorithm not in GATE_ALGORITHMS is set aside for gated nodes (the default runs: the
direct one, or with few channels conv2d_rows.cl's, which also scales its input).
"""

from __future__ import annotations

from dataclasses import replace
from math import prod

from cnnc.backends.opencl.algorithms import BINDERS as ALGORITHM_BINDERS
from cnnc.backends.opencl.algorithms import default_algorithm
from cnnc.backends.opencl.bind_fused import BINDERS as FUSED_BINDERS
from cnnc.backends.opencl.bind_residual import BINDERS as RESIDUAL_BINDERS
from cnnc.backends.opencl.launches import BindContext, Binder, Launch, NodeBinding, Value
from cnnc.errors import InternalError
from cnnc.ir.broadcast import padded
from cnnc.ir.gated import LAYER_OF_GATED
from cnnc.ir.graph import Node
from cnnc.ir.ops import layer_of

# The launches that read a convolution's input x as their first argument and can scale it.
GATED_KERNELS = frozenset({("conv2d.cl", "conv2d_forward"), ("conv2d.cl", "im2col"),
                           ("conv2d_rows.cl", "conv2d_rows")})


def gate_strides(x_shape: tuple[int, ...], gate_shape: tuple[int, ...]) -> dict[str, int]:
    """-D GS0..GS3: the gate's element strides over x's (N, H, W, C), 0 where it has size 1;
    GS0 (per example) from the shape without the batch, so it is the same at every batch."""
    dims = padded(gate_shape, len(x_shape))[1:]
    out, step = [], 1
    for d in reversed(dims):
        out.append(0 if d == 1 else step)
        step *= d
    return {"GS0": prod(dims), **{f"GS{i + 1}": s for i, s in enumerate(reversed(out))}}


def with_gate(lau: Launch, gate: Value, strides: dict[str, int]) -> Launch:
    """`lau` reading its input as x * gate (a kernel of GATED_KERNELS)."""
    if (lau.file, lau.kernel) not in GATED_KERNELS:
        raise InternalError(f"{lau.file}:{lau.kernel} cannot scale its input by a gate")
    defines = tuple(sorted({**lau.define_map, "GATED": 1, **strides}.items()))
    return replace(lau, defines=defines, args=(*lau.args, gate))


# The algorithms whose kernels scale their input by a gate as they load it: the tuner offers a
# gated node only these (cnnc/tune/space.py).
GATE_ALGORITHMS = frozenset({"direct", "conv_rows"})


def _direct_only(node: Node, layer: Node, ctx: BindContext) -> BindContext:
    """ctx without a tuned variant that names an algorithm other than the direct one, and in
    one reduction part (conv2d.cl scales no split forward pass's input); the direct one named
    where the layer's default is not a gate's (fused Winograd by rule: algorithms.py)."""
    variant = ctx.variant(node)
    if variant.get("algo", "direct") not in GATE_ALGORITHMS:
        variant = {}
    conv = replace(layer, op=layer_of(layer.op))
    if "algo" not in variant and default_algorithm(conv, ctx).name not in GATE_ALGORITHMS:
        variant = {"algo": "direct"}
    if variant.get("algo", "direct") == "direct":
        variant = {**variant, "split": 1}
    return replace(ctx, variants={**ctx.variants, node.name: variant})


def gated(layer_op: str, layer_binder: Binder) -> Binder:
    def bind(node: Node, ctx: BindContext) -> NodeBinding:
        x, gate, *rest = node.inputs
        layer = replace(node, op=layer_op, inputs=(x, *rest))
        inner = layer_binder(layer, _direct_only(node, layer, ctx))
        strides = gate_strides(ctx.shape(x), ctx.shape(gate))
        launches = tuple(with_gate(lau, Value(gate), strides)
                         if lau.args and lau.args[0] == Value(x) else lau
                         for lau in inner.launches)
        if launches == inner.launches:
            raise InternalError(f"node '{node.name}': no launch of its {layer_op} binding reads "
                                "its input")
        return replace(inner, launches=launches)
    return bind


_LAYERS = {"conv2d": ALGORITHM_BINDERS["conv2d"], **FUSED_BINDERS, **RESIDUAL_BINDERS}
BINDERS: dict[str, Binder] = {op: gated(layer, _LAYERS[layer])
                              for op, layer in LAYER_OF_GATED.items()}
