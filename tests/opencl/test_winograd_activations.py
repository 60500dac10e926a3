"""Issue 20's activations in the Winograd kernels' epilogue (winograd_output and
winograd_fused apply ACTIVATE as they store), against the NumPy reference in float64, with
test_winograd.py's tolerance."""

from __future__ import annotations

import pytest
from test_winograd import _kernels, assert_close, forward_graph, run_both

NEW = ("silu", "hard_sigmoid", "hard_swish", "gelu", "gelu_tanh", "softplus", "mish")


@pytest.mark.parametrize("fused", [None, 2])
@pytest.mark.parametrize("act", NEW)
def test_winograd_applies_the_activation_as_it_stores(device, act, fused):
    graph = forward_graph(5, 7, 4, 6, "same", True, act)
    variant = {"algo": "winograd", "wino_m": 2, **({"wino_fused": fused} if fused else {})}
    got, ref, k, exe = run_both(graph, 2, device, variant)
    assert ("winograd_fused" if fused else "winograd_gemm") in _kernels(exe)
    assert_close(got, ref, k, 2)
