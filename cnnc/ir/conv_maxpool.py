"""A convolution and the max (or average) pooling reading it as one op (cnnc/ir op table), made
by cnnc/passes/fuse_conv_maxpool.py at inference, never written in a spec.

``conv2d_maxpool(x[, other])`` is ``maxpool2d(conv(x[, other]))``: `conv` a conv2d, conv2d_bn,
conv2d_add or conv2d_bn_add node's computation (its attributes in `conv`, its op in `conv_op`:
bias, folded batch norm, residual and activation applied before the max, since max does not
commute with every activation), pooled as the maxpool2d node whose attributes are `pool`.
Parameters: the convolution's, in its op's order. Only windows whose every cell a kernel can
reach inside the convolution's own output tile or row block are fused (`pools_in_store`): 2x2
windows at stride 2 from the map's top-left corner (Keras' 'valid' and 'same', ONNX's pads
after and ceil_mode), a partial window at the bottom or right keeping its real cells. The
convolution's full map is then never written. The op stands for the pooling (`base`), its
output: its pictures and receptive field are one's.

``conv2d_avgpool(x[, other])`` is ``avgpool2d(conv(x[, other]))`` likewise (attributes `pool`:
the avgpool2d node's), for the same windows when each lies whole inside the map (`stores_pooled`:
no window cut short, so every mean is over four cells whatever the padding rule counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir import residual  # noqa: F401  (registers the ops the convolution may be)
from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.args import Arg, ArgError, Attrs, part_attrs
from cnnc.ir.convpool import pool_attrs_geometry
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape

CONV_OPS = ("conv2d", "conv2d_bn", "conv2d_add", "conv2d_bn_add")
"""The convolutions whose max pooling the op takes in (a residual one's second input is the
added tensor)."""

POOL_OF = {"conv2d_maxpool": "maxpool2d", "conv2d_avgpool": "avgpool2d"}
"""Each fused op's pooling op; FUSED_OF the other way."""
FUSED_OF = {pool: fused for fused, pool in POOL_OF.items()}


def pools_in_store(pool: Mapping[str, Any]) -> bool:
    """Whether a maxpool2d's attributes are a window the fused kernels pool as they store: 2x2
    at stride 2, undilated, no padding before (so windows start on even rows and columns).
    Padding after (Keras' 'same' on an odd size, ONNX's pads, ceil_mode) only cuts the last
    window short."""
    strides = pool["strides"] if pool["strides"] is not None else pool["pool_size"]
    pads = pool["pads"]
    return (tuple(pool["pool_size"]) == (2, 2) and tuple(strides) == (2, 2)
            and tuple(pool["dilation_rate"]) == (1, 1)
            and (pads is None or (pads[0] == 0 and pads[2] == 0)))


def read_pooled_in_store(graph: Any, name: str) -> bool:
    """Whether `name` is read in `graph` only by a 2x2 pooling the fusion folds into a
    convolution's store, as the tuner's stand-in `<node>/pool` (cnnc/tune/space.py:
    tuning_graph) and the binders' `<node>/conv` (bind_conv_maxpool.py) are. A map that
    something else reads too (unet_mini's skips) is written whole and pooled by pool.cl."""
    readers = [n for n in graph.nodes if name in n.inputs]
    return (len(readers) == 1 and readers[0].op in FUSED_OF
            and readers[0].inputs[:1] == (name,) and pools_in_store(readers[0].attrs)
            and name not in graph.outputs)


def whole_windows(pool: Mapping[str, Any], conv_hw: tuple[int, int]) -> bool:
    """Whether every window of a pooling that pools_in_store takes lies inside the OH x OW map
    it pools (none cut short by the bottom or right edge)."""
    geo = pool_attrs_geometry(conv_hw, pool)
    return 2 * geo["OH"] <= conv_hw[0] and 2 * geo["OW"] <= conv_hw[1]


def stores_pooled(pool_op: str, pool: Mapping[str, Any], conv_hw: tuple[int, int]) -> bool:
    """Whether the fused kernels pool this maxpool2d or avgpool2d of an OH x OW map as they
    store: a max over any window pools_in_store takes (a short window keeps its real cells), a
    mean over such windows when all are whole (the kernels divide by four)."""
    return pools_in_store(pool) and (pool_op == "maxpool2d" or whole_windows(pool, conv_hw))


def _check(attrs: Attrs, pool_op: str = "maxpool2d") -> None:
    try:
        OPS[attrs["conv_op"]].check_attrs(dict(attrs["conv"]))
        OPS[pool_op].check_attrs(dict(attrs["pool"]))
    except ArgError as err:
        raise ArgError(f"the convolution's or the pooling's attributes are invalid: {err}"
                       ) from None
    act = attrs["conv"]["activation"]
    if not ACTIVATIONS[act].elementwise:
        raise ArgError(f"Expected an element-wise activation on the convolution. Received "
                       f"activation={act}.")
    if not pools_in_store(attrs["pool"]):
        kind = "max" if pool_op == "maxpool2d" else "average"
        raise ArgError(f"Expected a 2x2 {kind} pooling at stride 2 with no padding before. "
                       f"Received pool={dict(attrs['pool'])}.")


def conv_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    """The convolution's output shape (the map the op does not write)."""
    return OPS[attrs["conv_op"]].infer(attrs["conv"], shapes)


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return OPS["maxpool2d"].infer(attrs["pool"], (conv_shape(attrs, shapes),))


def _infer_avg(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    middle = conv_shape(attrs, shapes)
    if middle[1] is not None and middle[2] is not None and not whole_windows(
            attrs["pool"], (middle[1], middle[2])):
        raise ShapeError(f"Expected average pooling windows that lie whole inside the "
                       f"convolution's {middle[1]}x{middle[2]} map. Received "
                       f"pool={dict(attrs['pool'])}.")
    return OPS["avgpool2d"].infer(attrs["pool"], (middle,))


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    return OPS[attrs["conv_op"]].params(attrs["conv"], shapes)


def parts(node: Node, shapes: tuple[Shape, ...]) -> tuple[Node, Node]:
    """The two nodes a conv2d_maxpool node stands for, given its inputs' shapes: the
    convolution (named `<node>/conv`, reading the node's inputs, with the node's parameters)
    and the pooling (the node's name, reading the convolution)."""
    middle = conv_shape(node.attrs, shapes)
    conv = Node(name=f"{node.name}/conv", op=node.attrs["conv_op"], inputs=node.inputs,
                attrs=node.attrs["conv"], params=node.params, shape=middle, span=node.span,
                path=node.path)
    pool = Node(name=node.name, op=POOL_OF[node.op], inputs=(conv.name,),
                attrs=node.attrs["pool"], shape=node.shape, span=node.span, path=node.path)
    return conv, pool


def pooled_geometry(attrs: Attrs, conv_hw: tuple[int, int]) -> dict[str, int]:
    """The kernels' -D options of the pooling: the pooled map's POOL_H x POOL_W (the
    convolution's OH x OW being the map it pools)."""
    geo = pool_attrs_geometry(conv_hw, attrs["pool"])
    return {"POOL_H": geo["OH"], "POOL_W": geo["OW"]}


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    middle = conv_shape(attrs, shapes)
    return (OPS[attrs["conv_op"]].flops(attrs["conv"], shapes, middle)
            + OPS["maxpool2d"].flops(attrs["pool"], (middle,), out))


def _flops_avg(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    middle = conv_shape(attrs, shapes)
    return (OPS[attrs["conv_op"]].flops(attrs["conv"], shapes, middle)
            + OPS["avgpool2d"].flops(attrs["pool"], (middle,), out))


def _reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    # a max rounds nothing: the convolution's sums are the error
    return OPS[attrs["conv_op"]].reduction(attrs["conv"], shapes)


def _reduction_avg(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    # each mean adds its four cells' rounding to the convolution's sums
    return (OPS[attrs["conv_op"]].reduction(attrs["conv"], shapes)
            + OPS["avgpool2d"].reduction(attrs["pool"], (conv_shape(attrs, shapes),)))


register(OpDef(
    name="conv2d_maxpool", group="fused", base="maxpool2d",
    args=(Arg("conv_op", A.choice(*CONV_OPS)), Arg("conv", part_attrs), Arg("pool", part_attrs)),
    arity=(1, 2), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=_reduction,
    doc="A convolution (with its batch norm folded, bias, residual and activation) and the 2x2 "
        "max pooling reading it as one op (inference): only the pooled map is written.",
))

register(OpDef(
    name="conv2d_avgpool", group="fused", base="avgpool2d",
    args=(Arg("conv_op", A.choice(*CONV_OPS)), Arg("conv", part_attrs), Arg("pool", part_attrs)),
    arity=(1, 2), infer=_infer_avg, params=_params, flops=_flops_avg,
    check=lambda attrs: _check(attrs, "avgpool2d"), reduction=_reduction_avg,
    doc="A convolution (with its batch norm folded, bias, residual and activation) and the 2x2 "
        "average pooling reading it, every window whole, as one op (inference): only the "
        "pooled map is written.",
))
