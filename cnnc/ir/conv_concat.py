"""A convolution reading a channel concatenation (of maps, some enlarged by nearest upsampling)
in place, as one op (cnnc/ir op table), made by cnnc/passes/fuse_conv_concat.py at inference,
never written in a spec.

``conv2d_concat(x0, x1)`` is ``conv(concatenate(up0(x0), up1(x1)))``: `conv` a conv2d or
conv2d_bn node's computation (its attributes in `conv`, its op in `conv_op`), the concatenation
along the channels (attributes `concat`) of two parts, part i enlarged by the integer factors
`ups[i]` (rows, columns) with nearest interpolation ((1, 1): the part as it is). Parameters: the
convolution's. A U-Net's decoder reads each skip this way: the concatenated (and upsampled) map
is never written where the convolution's kernel reads its channels from the parts where they
lie (bind_conv_concat.py), and copied into a workspace first where it cannot. The op stands for
the convolution (`base`): its output is the convolution's.
"""

from __future__ import annotations

from typing import Any

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir import (
    fused,  # noqa: F401  (registers conv2d_bn)
    resample,  # noqa: F401  (registers upsampling2d)
)
from cnnc.ir.args import Arg, ArgError, Attrs, part_attrs
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, ParamSpec, register
from cnnc.ir.shapes import Shape

CONV_OPS = ("conv2d", "conv2d_bn")
"""The convolutions that take in the concatenation they read (one input each)."""

NO_UP = (1, 1)


def _ups(name: str, value: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(u, (tuple, list)) and len(u) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in u)
        for u in value)
    if not ok:
        raise ArgError(f"Expected two pairs of positive integer factors (rows, columns), one "
                       f"per part. Received {name}={value!r}.")
    return tuple(tuple(int(v) for v in u) for u in value)  # type: ignore[return-value]


def _check(attrs: Attrs) -> None:
    try:
        OPS[attrs["conv_op"]].check_attrs(dict(attrs["conv"]))
        OPS["concatenate"].check_attrs(dict(attrs["concat"]))
    except ArgError as err:
        raise ArgError(f"the convolution's or the concatenation's attributes are invalid: {err}"
                       ) from None
    if attrs["concat"]["axis"] not in (-1, 3):
        raise ArgError(f"Expected a concatenation along the channels (axis -1 or 3). Received "
                       f"axis={attrs['concat']['axis']}.")


def _up_shape(shape: Shape, up: tuple[int, int]) -> Shape:
    n, h, w, c = shape
    return (n, None if h is None else h * up[0], None if w is None else w * up[1], c)


def concat_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    """The concatenated map's shape (the map the op does not write)."""
    if any(len(s) != 4 for s in shapes):
        raise ShapeError("Expected two NHWC maps to concatenate. Received "
                         f"{' and '.join(map(str, shapes))}.")
    enlarged = tuple(_up_shape(s, u) for s, u in zip(shapes, attrs["ups"]))
    return OPS["concatenate"].infer(attrs["concat"], enlarged)


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return OPS[attrs["conv_op"]].infer(attrs["conv"], (concat_shape(attrs, shapes),))


def _params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    return OPS[attrs["conv_op"]].params(attrs["conv"], (concat_shape(attrs, shapes),))


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    # the copies are not arithmetic
    return OPS[attrs["conv_op"]].flops(attrs["conv"], (concat_shape(attrs, shapes),), out)


def _reduction(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    return OPS[attrs["conv_op"]].reduction(attrs["conv"], (concat_shape(attrs, shapes),))


def parts(node: Node, shapes: tuple[Shape, ...]) -> tuple[Node, ...]:
    """The nodes a conv2d_concat node stands for, given its inputs' shapes: each upsampling
    (`<node>/up<i>`, for a part with factors other than (1, 1)), the concatenation
    (`<node>/cat`) and the convolution (`<node>/conv`, with the node's parameters), in order."""
    nodes: list[Node] = []
    cat_inputs = []
    for i, (x, up, shape) in enumerate(zip(node.inputs, node.attrs["ups"], shapes)):
        if tuple(up) == NO_UP:
            cat_inputs.append(x)
            continue
        attrs = OPS["upsampling2d"].check_attrs({"size": tuple(up)})
        nodes.append(Node(name=f"{node.name}/up{i}", op="upsampling2d", inputs=(x,),
                          attrs=attrs, shape=_up_shape(shape, up), span=node.span,
                          path=node.path))
        cat_inputs.append(nodes[-1].name)
    cat = Node(name=f"{node.name}/cat", op="concatenate", inputs=tuple(cat_inputs),
               attrs=node.attrs["concat"], shape=concat_shape(node.attrs, shapes),
               span=node.span, path=node.path)
    conv = Node(name=f"{node.name}/conv", op=node.attrs["conv_op"], inputs=(cat.name,),
                attrs=node.attrs["conv"], params=node.params, shape=node.shape, span=node.span,
                path=node.path)
    return (*nodes, cat, conv)


register(OpDef(
    name="conv2d_concat", group="fused", base="conv2d",
    args=(Arg("conv_op", A.choice(*CONV_OPS)), Arg("conv", part_attrs), Arg("concat", part_attrs),
          Arg("ups", _ups)),
    arity=(2, 2), infer=_infer, params=_params, flops=_flops, check=_check,
    reduction=_reduction,
    doc="A convolution (with its batch norm folded, bias and activation) reading the channel "
        "concatenation of two maps, each possibly enlarged by nearest upsampling, as one op "
        "(inference): the concatenated map is never written.",
))
