"""The op table: one definition per op (arguments, arity, shape rule, parameters, FLOPs).

Everything that differs per op and does not belong to a backend lives here. Backends and passes
keep their own tables keyed by the same op names (NumPy implementations, OpenCL bindings,
gradient rules); tests assert that every table covers every op in `OPS`.

Groups, one module each in cnnc/ir/ and one table each in every backend:
- ``layer`` (layers.py): what a spec can contain (Keras layers).
- ``gradient`` (gradients.py): ops that only the training graph uses (gradients, batch-norm
  statistics, dropout with a mask). Their inputs may name state tensors (parameters) directly.
- ``loss`` (losses.py): a loss and its gradient.
- ``update`` (updates.py): in-place updates of state (optimizer steps, moving averages). They
  produce no value; `mutates` lists the indices of the inputs they write.
- ``parallel`` (distributed_ops.py): ops that only data-parallel training uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from typing import Any

from cnnc.ir.args import Arg, Attrs, check_args
from cnnc.ir.shapes import Shape


@dataclass(frozen=True)
class ParamSpec:
    """A parameter a layer owns, named ``<layer>/<suffix>``."""

    suffix: str
    shape: tuple[int, ...]
    init: str  # 'glorot_uniform' | 'zeros' | 'ones'
    trainable: bool = True
    fan: tuple[int, int] | None = None  # (fan_in, fan_out) for glorot_uniform


def _no_params(attrs: Attrs, shapes: tuple[Shape, ...]) -> tuple[ParamSpec, ...]:
    return ()


def _no_flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    return 0


def _no_check(attrs: Attrs) -> None:
    return None


# ---------------------------------------------------------------- reduction rules
# How many terms an op sums into one output value, from its attributes and its inputs' concrete
# shapes (batch included). The cross-check (cnnc/crosscheck.py) scales its float32 tolerance by the
# square root of it: rounding errors grow like that in a sum of independent terms.


def one_term(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    return 1


def last_axis_terms(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    """A sum along the first input's last axis (dense, softmax and its gradient)."""
    return shapes[0][-1]


def row_terms(index: int) -> Callable[[Attrs, tuple[Shape, ...]], int]:
    """A sum over the rows of input `index` seen as a matrix (all but its last axis)."""
    return lambda attrs, shapes: prod(shapes[index][:-1])


def element_terms(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    """A sum over every element of the first input (the mean losses)."""
    return prod(shapes[0])


def window_terms(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    """A sum over a pooling window."""
    kh, kw = attrs["pool_size"]
    return kh * kw


@dataclass(frozen=True)
class OpDef:
    """One op. `infer(attrs, input_shapes) -> output shape` raises ShapeError (message only)."""

    name: str
    group: str
    args: tuple[Arg, ...]
    arity: tuple[int, int | None]  # (min, max) data inputs; max None = unbounded
    infer: Callable[[Attrs, tuple[Shape, ...]], Shape | None]
    params: Callable[[Attrs, tuple[Shape, ...]], tuple[ParamSpec, ...]] = _no_params
    flops: Callable[[Attrs, tuple[Shape, ...], Shape | None], int] = _no_flops
    check: Callable[[Attrs], None] = _no_check  # rules that tie several arguments together
    keras_name: str | None = None  # the Keras class, shown by `cnnc summary`
    aliases: tuple[str, ...] = ()  # other names accepted in specs (Keras class names)
    uses_step: bool = False  # reads the step counter (dropout masks, optimizer schedules)
    mutates: tuple[int, ...] = ()  # update ops: inputs written in place
    # update ops: per-step float scalars (attrs, step, learning_rate) -> tuple, computed once on the
    # host and handed to every backend, so both run the same arithmetic on the tensors.
    scalars: Callable[[Attrs, int, float], tuple[float, ...]] | None = None
    dtype: str = "float32"  # dtype of the output value
    # Terms summed into one output value (see "reduction rules" above), for the cross-check.
    reduction: Callable[[Attrs, tuple[Shape, ...]], int] = one_term
    # Carries an `activation` argument applied to its result (conv2d, dense, activation): the
    # passes that fuse, split or differentiate activations find them by this, not by a list.
    fuses_activation: bool = False
    # A layer that is a special case of another op: attrs -> (that op's name, its attributes).
    # Lowering (frontend/lower.py) builds the other op's node, so the special case costs one row.
    expand: Callable[[Attrs], tuple[str, dict[str, Any]]] | None = None
    # A fused op: the op it computes with more folded in (conv2d_bn: conv2d; conv2d_bn_add:
    # conv2d_bn). Its backends run that op's implementation and binding around the fold, and
    # fusion, the backends' fused tables, the tuner and the pictures read it (`layer_of`).
    base: str | None = None
    # A layer op: what kind of layer it is (LAYER_KINDS). The pictures colour and draw layers by
    # kind (cnnc/viz), so a new layer of a known kind needs nothing there.
    kind: str | None = None
    doc: str = ""

    def check_attrs(self, given: dict[str, Any]) -> Attrs:
        """Check keyword arguments from a spec or a pass; raises ArgError."""
        attrs = check_args(self.name, self.args, given)
        self.check(attrs)
        return attrs


OPS: dict[str, OpDef] = {}

# The kinds of layer (Keras' grouping of its layers, global pooling apart: it leaves no image).
LAYER_KINDS: dict[str, str] = {
    "input": "the data fed at run time",
    "convolution": "a product over sliding windows: each output channel is a feature map",
    "pooling": "a reduction over windows of each channel, an image again",
    "global_pooling": "a reduction over each whole channel",
    "dense": "a matrix product over the last axis",
    "merging": "several inputs joined into one",
    "normalization": "a per-channel affine normalisation",
    "activation": "an element-wise (or row-wise) function",
    "regularization": "training-time noise, the identity at inference",
    "reshaping": "values moved or padded without arithmetic",
}


def register(op: OpDef) -> OpDef:
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} defined twice")
    if (op.group == "layer") != (op.kind is not None) or (
            op.kind is not None and op.kind not in LAYER_KINDS):
        raise ValueError(f"op {op.name!r}: a layer op has a kind from LAYER_KINDS "
                         f"({', '.join(LAYER_KINDS)}), and no other op has one; got {op.kind!r}")
    OPS[op.name] = op
    return op


def op_names(group: str | None = None) -> list[str]:
    return [n for n, o in OPS.items() if group is None or o.group == group]


def node_op_names(group: str | None = None) -> list[str]:
    """The ops a graph node can have: all but layers that lowering expands into another op.
    Every backend and rule table covers these."""
    return [n for n in op_names(group) if OPS[n].expand is None]


def layer_of(name: str) -> str:
    """The op a fused op stands for: its `base`, followed to an op that has none (conv2d_bn_add:
    conv2d). Any other op stands for itself."""
    while (base := OPS[name].base) is not None:
        name = base
    return name


def lookup_layer(name: str) -> OpDef | None:
    """The layer op a spec names, by its cnnc name or any alias (case-insensitive)."""
    key = name.lower()
    for op in OPS.values():
        if op.group != "layer":
            continue
        if key == op.name or key in (a.lower() for a in op.aliases):
            return op
    return None


def layer_names() -> list[str]:
    names = []
    for op in OPS.values():
        if op.group == "layer":
            names.append(op.name)
            names.extend(op.aliases)
    return names
