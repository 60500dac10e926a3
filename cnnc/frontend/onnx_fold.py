"""ONNX front end: constant subgraphs folded at import, one small NumPy rule per ONNX op.

Exporters leave arithmetic on constants in the graph: the shape computations around a Reshape
(Shape -> Gather -> Unsqueeze -> Concat), weights cast or transposed, scalars for Clip. Every
node whose inputs are all known is evaluated here, so that lowering sees plain arrays. A tensor's
batch size is unknown at import: `Shape` writes it as the marker BATCH, which the structural rules
(gather, concatenate, slice, ...) carry along and arithmetic refuses. Results are bounded in size,
by the limits an initialiser has (onnx_file.py): one result holds at most MAX_TENSOR_ELEMENTS,
as a weight written as ConstantOfShape/Expand/Tile (VGG-19's first dense layer: 103 million
elements) imports like the same weight stored, while a hostile file cannot make a small constant
expand into gigabytes; all results of one import together hold at most MAX_FOLDED_BYTES.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod
from typing import Any

import numpy as np

from cnnc.frontend.onnx_file import MAX_EXTERNAL_BYTES, MAX_TENSOR_ELEMENTS
from cnnc.frontend.onnx_graph import OnnxNode

BATCH = np.iinfo(np.int64).min + 1  # the batch dimension in a folded shape
MAX_FOLDED_ELEMENTS = MAX_TENSOR_ELEMENTS  # one folded result: as one initialiser
MAX_FOLDED_BYTES = MAX_EXTERNAL_BYTES  # all folded results of a model: as its external data


class FoldError(ValueError):
    """A constant node cnnc cannot evaluate; the message names the attribute or value."""


Folder = Callable[[OnnxNode, Sequence[np.ndarray | None], int], list[np.ndarray]]


def _bounded(shape: Sequence[int], what: str = "the result") -> None:
    n = prod(int(d) for d in shape)
    if n > MAX_FOLDED_ELEMENTS:
        raise FoldError(f"{what} would hold {n:,} elements, more than cnnc folds into one "
                        f"constant ({MAX_FOLDED_ELEMENTS:,}, as for an initialiser)")


def _has_batch(*values: np.ndarray | None) -> bool:
    return any(v is not None and v.dtype == np.int64 and (v == BATCH).any() for v in values)


def _ints(value: np.ndarray | None, what: str) -> list[int]:
    if value is None:
        raise FoldError(f"{what} is missing")
    if value.dtype.kind not in "iu":
        raise FoldError(f"{what} must be integers, got {value.dtype}")
    return [int(v) for v in value.reshape(-1)]


def _axis(axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < max(rank, 1):
        raise FoldError(f"{what}={axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


def _constant(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    a = node.attrs
    if "value" in a and isinstance(a["value"], np.ndarray):
        return [a["value"]]
    if "value_float" in a:
        return [np.array(a["value_float"], dtype=np.float32)]
    if "value_floats" in a:
        return [np.array(a["value_floats"], dtype=np.float32)]
    if "value_int" in a:
        return [np.array(a["value_int"], dtype=np.int64)]
    if "value_ints" in a:
        return [np.array(a["value_ints"], dtype=np.int64)]
    raise FoldError(f"Constant with attributes {sorted(a)} (sparse or string constants) is not "
                    "supported")


def _cast(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    from cnnc.frontend.onnx_file import _dtypes, dtype_name

    to = node.attrs.get("to")
    dtype = _dtypes().get(to)
    if dtype is None:
        raise FoldError(f"to={dtype_name(to) if isinstance(to, int) else to!r} is not supported")
    x = xs[0]
    if _has_batch(x) and dtype != np.int64:
        raise FoldError("casting the batch size is not supported")
    return [x.astype(dtype.newbyteorder("="))]


def _gather(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    data, idx = xs
    axis = _axis(node.attrs.get("axis", 0), data.ndim)
    indices = np.asarray(_ints(idx, "indices")).reshape(idx.shape)
    size = data.shape[axis]
    if (indices < -size).any() or (indices >= size).any():
        raise FoldError(f"indices {indices.tolist()} are out of range for a dimension of {size}")
    _bounded((*data.shape[:axis], *indices.shape, *data.shape[axis + 1:]))
    return [np.take(data, indices, axis=axis)]


def _axes_of(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[int] | None:
    """Unsqueeze/Squeeze axes: an attribute before opset 13, the second input from 13 on."""
    if "axes" in node.attrs:
        return list(node.attrs["axes"])
    if len(xs) > 1 and xs[1] is not None:
        return _ints(xs[1], "axes")
    return None


def _unsqueeze(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    x = xs[0]
    axes = _axes_of(node, xs, opset)
    if axes is None:
        raise FoldError("Unsqueeze needs axes")
    rank = x.ndim + len(axes)
    out = x
    for ax in sorted(_axis(a, rank) for a in axes):
        out = np.expand_dims(out, ax)
    return [out]


def _squeeze(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    x = xs[0]
    axes = _axes_of(node, xs, opset)
    if axes is None:
        return [np.squeeze(x)]
    axes = [_axis(a, x.ndim) for a in axes]
    if any(x.shape[a] != 1 for a in axes):
        raise FoldError(f"axes {axes} of a tensor of shape {x.shape} are not all of size 1")
    return [np.squeeze(x, axis=tuple(axes))]


def _concat(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    parts = [x for x in xs if x is not None]
    axis = _axis(node.attrs.get("axis", 0), parts[0].ndim)
    _bounded((sum(p.size for p in parts),))
    try:
        return [np.concatenate(parts, axis=axis)]
    except ValueError as err:
        raise FoldError(f"inputs do not concatenate: {err}") from None


def _slice(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    x = xs[0]
    if opset < 10:
        starts, ends = list(node.attrs["starts"]), list(node.attrs["ends"])
        axes = list(node.attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = _ints(xs[1], "starts"), _ints(xs[2], "ends")
        axes = _ints(xs[3], "axes") if len(xs) > 3 and xs[3] is not None else list(
            range(len(starts)))
        steps = _ints(xs[4], "steps") if len(xs) > 4 and xs[4] is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise FoldError("starts, ends, axes and steps differ in length")
    index: list[slice] = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise FoldError("a step of 0")
        index[_axis(a, x.ndim)] = slice(s, e, st)  # Python clamps like ONNX does
    return [x[tuple(index)]]


def _reshape(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    x, shape = xs
    target = _ints(shape, "shape")
    allowzero = node.attrs.get("allowzero", 0)
    dims = [x.shape[i] if d == 0 and not allowzero and i < x.ndim else d
            for i, d in enumerate(target)]
    if _has_batch(x) or any(d < -1 for d in dims) or dims.count(-1) > 1:
        raise FoldError(f"shape {target} is not a constant reshape of {x.shape}")
    try:
        return [x.reshape(dims)]
    except ValueError:
        raise FoldError(f"cannot reshape a tensor of shape {x.shape} to {target}") from None


def _transpose(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    x = xs[0]
    perm = node.attrs.get("perm")
    if perm is not None and sorted(perm) != list(range(x.ndim)):
        raise FoldError(f"perm={tuple(perm)} is not a permutation of {x.ndim} axes")
    return [np.transpose(x, perm)]


def _arith(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Folder:
    def fold(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
        a, b = xs
        if _has_batch(a, b):
            raise FoldError("arithmetic on the batch size is not supported")
        try:
            _bounded(np.broadcast_shapes(a.shape, b.shape))
        except ValueError:
            raise FoldError(f"shapes {a.shape} and {b.shape} do not broadcast") from None
        with np.errstate(all="ignore"):
            return [fn(a, b).astype(np.result_type(a, b))]
    return fold


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if (b == 0).any():
            raise FoldError("integer division by zero")
        return np.trunc(a / b)  # ONNX integer division truncates toward zero
    return a / b


def _shape_of_constant(node: OnnxNode, xs: Sequence[np.ndarray | None],
                       opset: int) -> list[np.ndarray]:
    return [slice_shape(xs[0].shape, node)]


def slice_shape(shape: Sequence[int], node: OnnxNode) -> np.ndarray:
    """Shape's output: the dims (BATCH for an unknown batch), with its start/end (opset 15)."""
    dims = np.array(list(shape), dtype=np.int64)
    start, end = node.attrs.get("start", 0), node.attrs.get("end")
    return dims[start:end]


def _constant_of_shape(node: OnnxNode, xs: Sequence[np.ndarray | None],
                       opset: int) -> list[np.ndarray]:
    dims = _ints(xs[0], "shape")
    if any(d < 0 for d in dims):
        raise FoldError(f"shape {dims} has negative or batch dimensions")
    _bounded(dims)
    value = node.attrs.get("value", np.zeros(1, dtype=np.float32))
    return [np.full(dims, value.reshape(-1)[0], dtype=value.dtype)]


def _range(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    start, limit, delta = xs
    if _has_batch(start, limit, delta):
        raise FoldError("a range over the batch size is not supported")
    if any(v.size != 1 for v in xs):
        raise FoldError("start, limit and delta must be scalars")
    a, b, d = (v.reshape(-1)[0] for v in xs)
    if d == 0:
        raise FoldError("delta is 0")
    _bounded((max(int(np.ceil((b - a) / d)), 0),))
    return [np.arange(a, b, d).astype(np.result_type(start, limit, delta))]


def _expand(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    x, shape = xs
    dims = _ints(shape, "shape")
    if _has_batch(x) or any(d < 0 for d in dims):
        raise FoldError(f"shape {dims} has negative or batch dimensions")
    try:
        out_shape = np.broadcast_shapes(x.shape, tuple(dims))  # ONNX's Expand broadcasts both
    except ValueError:
        raise FoldError(f"shape {dims} does not broadcast with {x.shape}") from None
    _bounded(out_shape)
    return [np.array(np.broadcast_to(x, out_shape))]


def _tile(node: OnnxNode, xs: Sequence[np.ndarray | None], opset: int) -> list[np.ndarray]:
    x, repeats = xs[0], xs[1]
    reps = _ints(repeats, "repeats")
    if len(reps) != x.ndim or any(r < 0 for r in reps):
        raise FoldError(f"repeats {reps} must be {x.ndim} non-negative integers")
    if _has_batch(x):
        raise FoldError("tiling the batch size is not supported")
    _bounded([d * r for d, r in zip(x.shape, reps)])
    return [np.tile(x, reps)]


FOLDERS: dict[str, Folder] = {
    "Constant": _constant,
    "Identity": lambda node, xs, opset: [xs[0]],
    "Cast": _cast,
    "Shape": _shape_of_constant,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Slice": _slice,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Add": _arith(np.add),
    "Sub": _arith(np.subtract),
    "Mul": _arith(np.multiply),
    "Div": _arith(_divide),
    "Neg": lambda node, xs, opset: [-xs[0]],
    "Sqrt": lambda node, xs, opset: [np.sqrt(xs[0])],
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Expand": _expand,
    "Tile": _tile,
}


class FoldBudget:
    """The bytes all folded results of one import hold together, bounded by MAX_FOLDED_BYTES
    (each result is already bounded alone): many large constants add up."""

    def __init__(self) -> None:
        self.used = 0

    def charge(self, values: Sequence[np.ndarray]) -> None:
        self.used += sum(int(v.nbytes) for v in values)
        if self.used > MAX_FOLDED_BYTES:
            raise FoldError(f"the model's folded constants would hold {self.used:,} bytes, more "
                            f"than cnnc folds in one model ({MAX_FOLDED_BYTES:,}, as for its "
                            "external data)")


def fold(node: OnnxNode, values: Sequence[np.ndarray | None], opset: int,
         budget: FoldBudget | None = None) -> list[np.ndarray]:
    """The outputs of a node whose inputs are all constants; FoldError if it cannot."""
    try:
        out = FOLDERS[node.op](node, values, opset)
    except FoldError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        raise FoldError(f"cannot evaluate it on constant inputs ({type(err).__name__}: "
                        f"{err})") from None
    if budget is not None:
        budget.charge(out)
    return out


def can_fold(node: OnnxNode, known: dict[str, Any]) -> bool:
    return node.op in FOLDERS and all(not v or v in known for v in node.inputs)


__all__ = ["BATCH", "FOLDERS", "FoldBudget", "FoldError", "can_fold", "fold", "slice_shape"]
