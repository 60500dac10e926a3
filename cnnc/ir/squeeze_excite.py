"""A squeeze-and-excitation block's gate as one op (cnnc/ir op table), made by
cnnc/passes/fuse_squeeze_excite.py at inference, never written in a spec.

``squeeze_excite(x)`` is ``gate(hidden(global_avgpool2d(x)))``: the global average pooling of an
(N, H, W, C) map (the squeeze; its attributes in `pool`, keepdims or not), then two layers on
the pooled vector, each a 1x1 stride-1 conv2d or a dense layer with its bias and activation (the
excitation: `hidden_op` and `hidden`, then `gate_op` and `gate`), the second's activation a
sigmoid or hard-sigmoid. Its value is the gate, (N, 1, 1, G) or (N, G) as the last layer
makes it; the product of the map by it is folded into the convolution reading both
(cnnc/passes/fold_gate.py). Parameters: the hidden layer's, then the gate layer's, each in its
own op's order. The pooled and hidden vectors are never written: one work-group per example
keeps them on chip (kernels/squeeze_excite.cl), so the block takes one launch instead of three.
The op stands for the global pooling (`base`): its receptive field is the whole map.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir import layers  # noqa: F401  (registers the ops the parts run)
from cnnc.ir.args import Arg, ArgError, Attrs, part_attrs
from cnnc.ir.depthwise_pointwise import is_pointwise
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape

LAYER_OPS = ("conv2d", "dense")
# The gate's activations the kernel computes itself (common.h's ACTIVATE is the hidden one's).
GATE_ACTIVATIONS = ("sigmoid", "hard_sigmoid")
# The pooled and hidden vectors together, in floats, up to which a block fuses: they stay in a
# work-group's local memory, 8 KiB of the 32 KiB every OpenCL device offers.
MAX_VECTOR_FLOATS = 2048


def is_vector_layer(op: str, attrs: Attrs) -> bool:
    """Whether a layer is a plain matrix product over the channels of a pooled vector: a dense
    layer, or a 1x1 stride-1 undilated ungrouped conv2d."""
    return op == "dense" or (op == "conv2d" and is_pointwise(attrs))


def _check(attrs: Attrs) -> None:
    try:
        OPS["global_avgpool2d"].check_attrs(dict(attrs["pool"]))
        OPS[attrs["hidden_op"]].check_attrs(dict(attrs["hidden"]))
        OPS[attrs["gate_op"]].check_attrs(dict(attrs["gate"]))
    except ArgError as err:
        raise ArgError(f"a part's attributes are invalid: {err}") from None
    for part in ("hidden", "gate"):
        if not is_vector_layer(attrs[f"{part}_op"], attrs[part]):
            raise ArgError(f"Expected a dense layer or a 1x1, stride-1, undilated, ungrouped "
                           f"conv2d as the {part} part. Received {dict(attrs[part])}.")
    if attrs["hidden"]["activation"] == "softmax":
        raise ArgError("Expected an element-wise activation on the hidden part. Received "
                       "softmax.")
    if attrs["gate"]["activation"] not in GATE_ACTIVATIONS:
        raise ArgError(f"Expected the gate's activation among {', '.join(GATE_ACTIVATIONS)}. "
                       f"Received {attrs['gate']['activation']}.")


def part_shapes(attrs: Attrs, x: Shape) -> tuple[Shape, Shape, Shape]:
    """The pooled, hidden and gate shapes the parts make from an input of shape x."""
    pooled = OPS["global_avgpool2d"].infer(attrs["pool"], (x,))
    hidden = OPS[attrs["hidden_op"]].infer(attrs["hidden"], (pooled,))
    return pooled, hidden, OPS[attrs["gate_op"]].infer(attrs["gate"], (hidden,))


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    try:
        return part_shapes(attrs, x)[2]
    except ShapeError as err:
        raise ShapeError(f"a part of the squeeze-excite block: {err.message}") from None


def part_params(attrs: Attrs, x: Shape) -> tuple[tuple[ParamSpec, ...], tuple[ParamSpec, ...]]:
    """The hidden and gate layers' parameters, each in its own op's order."""
    pooled, hidden, _ = part_shapes(attrs, x)
    return (OPS[attrs["hidden_op"]].params(attrs["hidden"], (pooled,)),
            OPS[attrs["gate_op"]].params(attrs["gate"], (hidden,)))


def parts(node: Node, x: Shape) -> tuple[Node, Node, Node]:
    """The three nodes a squeeze_excite node stands for, given its input's shape: the pooling
    (`<node>/squeeze`, reading the node's input), the hidden layer (`<node>/excite`) and the
    gate layer (the node's name), each with its own parameters and shape."""
    attrs = node.attrs
    pooled, hidden, _ = part_shapes(attrs, x)
    first = len(part_params(attrs, x)[0])
    pool = Node(name=f"{node.name}/squeeze", op="global_avgpool2d", inputs=node.inputs,
                attrs=attrs["pool"], shape=pooled, span=node.span, path=node.path)
    mid = Node(name=f"{node.name}/excite", op=attrs["hidden_op"], inputs=(pool.name,),
               attrs=attrs["hidden"], params=node.params[:first], shape=hidden,
               span=node.span, path=node.path)
    gate = Node(name=node.name, op=attrs["gate_op"], inputs=(mid.name,), attrs=attrs["gate"],
                params=node.params[first:], shape=node.shape, span=node.span, path=node.path)
    return pool, mid, gate


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    first, second = part_params(attrs, shapes[0])
    return (*first, *second)


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    pooled, hidden, gate = part_shapes(attrs, shapes[0])
    return (OPS["global_avgpool2d"].flops(attrs["pool"], shapes, pooled)
            + OPS[attrs["hidden_op"]].flops(attrs["hidden"], (pooled,), hidden)
            + OPS[attrs["gate_op"]].flops(attrs["gate"], (hidden,), gate))


def _reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    # each gate term carries a hidden sum's rounding, and each hidden term a pooled sum's
    pooled, hidden, _ = part_shapes(attrs, shapes[0])
    return (OPS["global_avgpool2d"].reduction(attrs["pool"], shapes)
            + OPS[attrs["hidden_op"]].reduction(attrs["hidden"], (pooled,))
            + OPS[attrs["gate_op"]].reduction(attrs["gate"], (hidden,)))


register(OpDef(
    name="squeeze_excite", group="fused", base="global_avgpool2d",
    args=(Arg("pool", part_attrs), Arg("hidden_op", A.choice(*LAYER_OPS)),
          Arg("hidden", part_attrs), Arg("gate_op", A.choice(*LAYER_OPS)),
          Arg("gate", part_attrs)),
    arity=(1, 1), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=_reduction,
    doc="A squeeze-and-excitation gate (global average pooling, then two 1x1 convolutions or "
        "dense layers with their biases and activations, the second a sigmoid or "
        "hard-sigmoid) as one op (inference): the pooled and hidden vectors are never written.",
))
