"""Integer arithmetic shared by the memory planner and the OpenCL work-size choices."""

from __future__ import annotations


def ceil_div(a: int, b: int) -> int:
    """a / b rounded up, for non-negative a and positive b."""
    return -(-a // b)


def round_up(a: int, b: int) -> int:
    """The smallest multiple of b that is at least a (alignments, work sizes)."""
    return ceil_div(a, b) * b
