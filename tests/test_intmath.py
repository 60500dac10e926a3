"""cnnc/intmath.py: the rounding the memory planner and the OpenCL work sizes share."""

from __future__ import annotations

import pytest

from cnnc.intmath import ceil_div, round_up


@pytest.mark.parametrize("a,b,div,up", [(0, 4, 0, 0), (1, 4, 1, 4), (4, 4, 1, 4), (5, 4, 2, 8),
                                        (129, 128, 2, 256), (7, 1, 7, 7)])
def test_ceil_div_and_round_up(a, b, div, up):
    assert ceil_div(a, b) == div
    assert round_up(a, b) == up
    assert round_up(a, b) % b == 0 and 0 <= round_up(a, b) - a < b
