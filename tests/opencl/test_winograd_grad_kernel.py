"""Winograd F(3x3, 2x2) and F(3x3, 4x4) for conv2d's kernel gradient (kernels/winograd.cl:
winograd_input, winograd_dy, winograd_grad_gemm, winograd_grad_output; winograd.py's
bind_conv2d_grad_kernel_winograd) against the NumPy reference in float64, on shapes no tile
divides, 1x1 images, channels not multiples of the vector width, same and valid padding, batch
1; the tuner's space and gate for it; and the fashion model's training step with every 3x3
kernel gradient on Winograd against the default kernels.

Tolerance: the direct kernel gradient's float32 error (a sum of N*OH*OW terms: ~sqrt(K) * 2^-24
relative to the output's scale) times the variant's error factor, with a margin of 2x.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_winograd import EPS32, _attrs, _input, _kernels, run_both

from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.winograd import (
    grad_kernel_error_factor,
    grad_kernel_variants,
    winograd_error_factor,
)
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node


def grad_kernel_graph(h, w, c, f, padding) -> Graph:
    oh, ow = (h, w) if padding == "same" else (h - 2, w - 2)
    attrs = Attrs(filters=f, input_shape=(h, w, c), **_attrs(padding))
    node = Node("y", "conv2d_grad_kernel", ("x", "dy"), attrs, shape=(3, 3, c, f))
    return Graph("gk", (_input("x", (h, w, c)), _input("dy", (oh, ow, f)), node), ("y",), ())


# (batch, h, w, c, f, padding)
CASES = [
    (1, 5, 7, 3, 5, "same"),
    (3, 1, 1, 4, 8, "same"),
    (3, 5, 7, 16, 24, "valid"),
    (2, 9, 6, 5, 16, "same"),
    pytest.param((4, 14, 14, 32, 64, "same"), marks=pytest.mark.slow),
]


def _id(case) -> str:
    return "x".join(map(str, case[:5])) + f"-{case[5]}"


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_grad_kernel_matches_reference(device, m, case):
    batch, h, w, c, f, padding = case
    graph = grad_kernel_graph(h, w, c, f, padding)
    got, ref, _, exe = run_both(graph, batch, device, {"algo": "winograd", "wino_m": m})
    assert {"winograd_dy", "winograd_grad_gemm"} <= _kernels(exe)
    assert "conv2d_grad_kernel" not in _kernels(exe)
    oh, ow = (h, w) if padding == "same" else (h - 2, w - 2)
    k = batch * oh * ow  # the terms each dW element sums
    scale = max(np.abs(ref).max(), 1.0)
    tol = 2 * grad_kernel_error_factor({"wino_m": m}) * np.sqrt(k) * EPS32 * scale
    err = np.abs(got.astype(np.float64) - ref).max()
    assert err <= tol, f"max error {err:.3e} > tolerance {tol:.3e}"


def test_the_variants_and_where_they_apply(device):
    from cnnc.backends.opencl.runtime import OpenCLBackend

    target = OpenCLBackend(device).target
    graph = grad_kernel_graph(14, 14, 32, 64, "same")
    ctx = BindContext(graph, 8, target)
    variants = grad_kernel_variants(graph.node("y"), ctx)
    assert [v["wino_m"] for v in variants][:1] == [4] and {2, 4} <= {v["wino_m"] for v in variants}
    strided = Graph("gk", graph.nodes[:2] + (Node(
        "y", "conv2d_grad_kernel", ("x", "dy"),
        Attrs(filters=64, input_shape=(14, 14, 32), **{**_attrs("same"), "strides": (2, 2)}),
        shape=(3, 3, 32, 64)),), ("y",), ())
    assert grad_kernel_variants(strided.node("y"), BindContext(strided, 8, target)) == []
    # The kernel gradient's transforms amplify rounding far less than the forward pass's
    assert grad_kernel_error_factor({"wino_m": 4}) < winograd_error_factor(4)


def test_the_gate_admits_it_and_the_tuner_may_choose_it(device, tmp_path):
    """The tuner's gate checks the Winograd kernel gradient on the real and edge shapes (the
    canary regions included), and it is in the node's variant space."""
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.tune.gate import Gate
    from cnnc.tune.space import variant_space

    graph = grad_kernel_graph(9, 6, 5, 16, "same")
    backend = OpenCLBackend(device)
    node = graph.node("y")
    space = variant_space(node, BindContext(graph, 3, backend.target))
    winograd = [v for v in space if v.get("algo") == "winograd"]
    assert winograd, space
    gate = Gate(backend, graph, node, 3)
    for v in winograd:
        verdict = gate.check(v)
        assert verdict.admitted, verdict.reason
