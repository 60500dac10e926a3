"""Binders of the gathered convolutions (cnnc/ir/gathered.py): node -> launches, and their table
`BINDERS`.

A gathered node runs its layer's own binding (conv2d's direct algorithm, the folded batch norm
around it: bind_fused.py) on a stand-in input of the gathered shape, and the one launch that
reads that input, conv2d.cl's conv2d_forward, gets the real inputs instead (the first in x's
place, the others as its last arguments) and the runs as -D GATHERED=1 SOURCES SEGMENTS
SEG<i>_SRC SEG<i>_C SEG<i>_OFF SEG<i>_LEN SEG<i>_K0 SEG<i>_KS (none depends on the batch, so
every batch size shares the program). The implicit GEMM on the register-blocked path always:
copying windows out (im2col) or staging a local tile would read the gathered tensor as one.
The tuner times and keys a gathered node as that layer on the gathered shape
(cnnc/tune/space.py: tuning_graph): its variant's register block and row groups are kept here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from cnnc.backends.opencl.algorithms import BINDERS as ALGORITHM_BINDERS
from cnnc.backends.opencl.bind_fused import BINDERS as FUSED_BINDERS
from cnnc.backends.opencl.launches import BindContext, Binder, Launch, NodeBinding, Value
from cnnc.backends.opencl.primitives import gather_defines
from cnnc.errors import InternalError
from cnnc.ir.args import Attrs
from cnnc.ir.gathered import LAYER_OF_GATHERED, gathered_shape
from cnnc.ir.graph import Node

# What every gathered node binds with, over its variant: its layer's direct implicit GEMM, no
# local tile, in one reduction part (a tuned register block and row groups are kept).
_GATHERED_VARIANT = {"algo": "direct", "im2col": 0, "local": 0, "split": 1}


@dataclass
class _StandIn(BindContext):
    """A BindContext that also knows the shapes of values no graph holds (the stand-in)."""

    extra: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def shape(self, value: str) -> tuple[int, ...]:
        return self.extra[value] if value in self.extra else super().shape(value)


def gathered(layer_op: str, layer_binder: Binder) -> Binder:
    def bind(node: Node, ctx: BindContext) -> NodeBinding:
        shapes = tuple(ctx.shape(x) for x in node.inputs)
        stand_in = f"{node.name}/gathered"
        layer = replace(node, op=layer_op, inputs=(stand_in,),
                        attrs=Attrs({k: v for k, v in node.attrs.items() if k != "segments"}))
        variant: dict[str, Any] = {**ctx.variant(node), **_GATHERED_VARIANT}
        inner_ctx = _StandIn(ctx.graph, ctx.batch, ctx.target,
                             {**ctx.variants, node.name: variant}, ctx.serial,
                             extra={stand_in: gathered_shape(node.attrs, shapes)})
        inner = layer_binder(layer, inner_ctx)
        defines = {"GATHERED": 1, **gather_defines(node.attrs["segments"],
                                                   [s[-1] for s in shapes])}
        launches: list[Launch] = []
        for lau in inner.launches:
            if Value(stand_in) not in lau.args:
                launches.append(lau)
                continue
            if ((lau.file, lau.kernel) != ("conv2d.cl", "conv2d_forward")
                    or lau.args[0] != Value(stand_in) or Value(stand_in) in lau.args[1:]):
                raise InternalError(f"node '{node.name}': {lau.file}:{lau.kernel} of its "
                                    f"{layer_op} binding cannot read a gathered input")
            args = (Value(node.inputs[0]), *lau.args[1:], *map(Value, node.inputs[1:]))
            launches.append(replace(lau, args=args, defines=tuple(sorted(
                {**lau.define_map, **defines}.items()))))
        if launches == list(inner.launches):
            raise InternalError(f"node '{node.name}': no launch of its {layer_op} binding "
                                "reads its input")
        return replace(inner, launches=tuple(launches))
    return bind


_LAYERS = {"conv2d": ALGORITHM_BINDERS["conv2d"], **FUSED_BINDERS}
BINDERS: dict[str, Binder] = {op: gathered(layer, _LAYERS[layer])
                              for op, layer in LAYER_OF_GATHERED.items()}
