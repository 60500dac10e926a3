"""Keras' broadcasting of merge inputs (shape inference, cnnc/ir): NumPy's rule on the
non-batch axes, with lower-rank inputs given size-1 axes after the batch axis."""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir.shapes import Shape, shape_str


def padded(shape: Shape, rank: int) -> Shape:
    """`shape` with size-1 axes inserted after the batch axis up to `rank` axes in all: Keras'
    Merge expands a lower-rank input at axis 1, so a (N, C) input meets (N, H, W, C) as
    (N, 1, 1, C) (NumPy's trailing-axis rule on the non-batch axes)."""
    return (shape[0], *(1,) * (rank - len(shape)), *shape[1:])


def broadcast_shapes(shapes: tuple[Shape, ...]) -> Shape:
    """The shape of a merge of inputs of these shapes; ShapeError naming both shapes where two
    inputs differ on an axis and neither has size 1 there."""
    rank = max(len(s) for s in shapes)
    if any(len(s) < 1 for s in shapes):
        raise ShapeError("merges take inputs with a batch axis")
    out = list(padded(shapes[0], rank))
    first = shapes[0]
    for s in shapes[1:]:
        p = padded(s, rank)
        for ax in range(1, rank):
            a, b = out[ax], p[ax]
            if a == b or b == 1:
                continue
            if a == 1:
                out[ax] = b
                continue
            raise ShapeError(
                f"inputs of shapes {shape_str(first)} and {shape_str(s)} do not broadcast: "
                f"axis {ax - rank} has sizes {a} and {b}. Merges broadcast like NumPy on the "
                "non-batch axes: sizes must be equal or one of them 1 (a (1, 1, C) gate times "
                "an (H, W, C) map)")
    return tuple(out)


def broadcast_axes(shape: Shape, out: Shape) -> tuple[int, ...]:
    """The axes of `out` (batch axis 0) that an input of `shape` is broadcast along."""
    p = padded(shape, len(out))
    return tuple(ax for ax in range(len(out)) if p[ax] == 1 and out[ax] != 1)
