"""NumPy implementations of the merges with broadcasting, their gradient ops and reshape
(cnnc/ir/merges.py, cnnc/ir/reshapes.py), keyed by op name."""

from __future__ import annotations

from functools import reduce

import numpy as np

from cnnc.backends.numpy.activations import activate
from cnnc.backends.numpy.call import Call, Impl
from cnnc.ir.merges import FUSED_MERGE
from cnnc.ir.ops import layer_of


def expand(xs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """Keras' broadcasting: lower-rank inputs get size-1 axes after the batch axis, then
    NumPy's rule applies (cnnc/ir/broadcast.py)."""
    rank = max(x.ndim for x in xs)
    return [x.reshape(x.shape[0], *(1,) * (rank - x.ndim), *x.shape[1:]) for x in xs]


def sum_to(call: Call, g: np.ndarray) -> np.ndarray:
    """g summed over the axes an operand of shape (N, *input_shape) was broadcast along."""
    shape = call.attrs["input_shape"]
    target = (1,) * (g.ndim - 1 - len(shape)) + tuple(shape)
    axes = tuple(ax + 1 for ax, (t, d) in enumerate(zip(target, g.shape[1:])) if t == 1 != d)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(g.shape[0], *shape)


def _fold(fn):
    def impl(call: Call, *xs: np.ndarray) -> np.ndarray:
        return reduce(fn, expand(xs))
    return impl


def _average(call: Call, *xs: np.ndarray) -> np.ndarray:
    return reduce(np.add, expand(xs)) * call.const(1.0 / len(xs))


def _share(x: np.ndarray, other: np.ndarray, wins: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The binary maximum's (minimum's) weight of x: 1 where it wins, 1/2 on a tie."""
    return np.where(wins, 1.0, np.where(x == other, 0.5, 0.0)).astype(dtype)


def _extremum_grad(greater: bool):
    def impl(call: Call, dy: np.ndarray, x: np.ndarray, other: np.ndarray) -> np.ndarray:
        dy, x, other = expand((dy, x, other))
        wins = x > other if greater else x < other
        return sum_to(call, dy * _share(x, other, wins, dy.dtype))
    return impl


def _multiply_grad(call: Call, dy: np.ndarray, other: np.ndarray) -> np.ndarray:
    dy, other = expand((dy, other))
    return sum_to(call, dy * other)


def _unbroadcast(call: Call, dy: np.ndarray) -> np.ndarray:
    return sum_to(call, dy) * call.const(call.attrs["scale"])


def _with_activation(call: Call, *xs: np.ndarray) -> np.ndarray:
    """A fused `<merge>_act`: the merge's own implementation, then the activation."""
    base = layer_of(call.node.op)
    y = _fold(np.add)(call, *xs) if base == "add" else MERGE_IMPLS[base](call, *xs)
    return activate(call.attrs["activation"], y)


MERGE_IMPLS: dict[str, Impl] = {
    "multiply": _fold(np.multiply),
    "subtract": _fold(np.subtract),
    "maximum": _fold(np.maximum),
    "minimum": _fold(np.minimum),
    "average": _average,
    "unbroadcast": _unbroadcast,
    "multiply_grad": _multiply_grad,
    "maximum_grad": _extremum_grad(True),
    "minimum_grad": _extremum_grad(False),
    "reshape": lambda call, x: x.reshape(x.shape[0], *call.node.shape[1:]),
    **{fused: _with_activation for fused in FUSED_MERGE.values()},
}
