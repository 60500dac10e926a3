"""Tensor shapes as the IR writes them: the `Shape` type and how messages print one."""

from __future__ import annotations

from math import prod

Shape = tuple[int | None, ...]
"""A tensor shape; a leading None is the batch dimension, left open until compile time."""


def shape_str(shape: Shape) -> str:
    """(None, 28, 28, 1), with Python's trailing comma for one dimension: (10,)."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (
        ",)" if len(shape) == 1 else ")"
    )


def numel(shape: Shape) -> int:
    """Elements per example: the product of the known dimensions."""
    return prod(d for d in shape if d is not None)
