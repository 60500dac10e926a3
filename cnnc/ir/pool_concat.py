"""A max pooling reading a channel concatenation in place, as one op (cnnc/ir op table), made
by cnnc/passes/fuse_pool_concat.py at inference, never written in a spec.

``maxpool2d_concat(x0, .., xk)`` is ``maxpool2d(concatenate(x0, .., xk))`` for 2 to 4 NHWC maps
concatenated along the channels (attributes `concat`), pooled with the attributes `pool`. Max
pooling works channel by channel, so each output channel reads one part: the concatenated map
(an Inception block's output, pooled before the next block) is never written. The op stands for
the pooling (`base`): its output is the pooling's.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir.args import Arg, ArgError, Attrs, part_attrs
from cnnc.ir.graph import Node
from cnnc.ir.ops import OPS, OpDef, register
from cnnc.ir.shapes import Shape

MAX_PARTS = 4
"""The most parts one launch reads (kernels/pool.cl's -D PARTS: one argument each)."""


def _check(attrs: Attrs) -> None:
    try:
        OPS["maxpool2d"].check_attrs(dict(attrs["pool"]))
        OPS["concatenate"].check_attrs(dict(attrs["concat"]))
    except ArgError as err:
        raise ArgError(f"the pooling's or the concatenation's attributes are invalid: {err}"
                       ) from None
    if attrs["concat"]["axis"] not in (-1, 3):
        raise ArgError(f"Expected a concatenation along the channels (axis -1 or 3). Received "
                       f"axis={attrs['concat']['axis']}.")


def concat_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    """The concatenated map's shape (the map the op does not write)."""
    if any(len(s) != 4 for s in shapes):
        raise ShapeError("Expected NHWC maps to concatenate. Received "
                         f"{', '.join(map(str, shapes))}.")
    return OPS["concatenate"].infer(attrs["concat"], shapes)


def _infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return OPS["maxpool2d"].infer(attrs["pool"], (concat_shape(attrs, shapes),))


def _flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    # the concatenation's copy is not arithmetic
    return OPS["maxpool2d"].flops(attrs["pool"], (concat_shape(attrs, shapes),), out)


def parts(node: Node, shapes: tuple[Shape, ...]) -> tuple[Node, Node]:
    """The nodes a maxpool2d_concat node stands for, given its inputs' shapes: the
    concatenation (`<node>/cat`) and the pooling (`<node>/pool`), in order."""
    cat = Node(name=f"{node.name}/cat", op="concatenate", inputs=node.inputs,
               attrs=node.attrs["concat"], shape=concat_shape(node.attrs, shapes),
               span=node.span, path=node.path)
    pool = Node(name=f"{node.name}/pool", op="maxpool2d", inputs=(cat.name,),
                attrs=node.attrs["pool"], shape=node.shape, span=node.span, path=node.path)
    return cat, pool


register(OpDef(
    name="maxpool2d_concat", group="fused", base="maxpool2d",
    args=(Arg("pool", part_attrs), Arg("concat", part_attrs)),
    arity=(2, MAX_PARTS), infer=_infer, flops=_flops, check=_check,
    doc="A max pooling reading the channel concatenation of 2 to 4 maps as one op (inference): "
        "the concatenated map is never written.",
))
