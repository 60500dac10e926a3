"""conv2d_forward's 1x1 path (conv2d.cl: POINTWISE_ROWS, a 1x1 stride-1 convolution without
padding or groups reading its input as the matrix it is) against the NumPy reference in float64,
register blocks of 1 to 8 rows over maps whose pixel counts no block divides (the last block's
rows past the end, blocks straddling two examples), plain, with a residual join, gated per
example (a block within one example or across two) and per pixel; and the 1x1 layers left on
the general path (strided, grouped) beside them.

Tolerance: the gate's (cnnc/tune/gate.py), as in test_residual.py.
"""

from __future__ import annotations

import pytest
from test_gated import gated_graph
from test_residual import assert_close, run_both

from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node, StateSpec, infer_shapes
from cnnc.ir.ops import OPS

# Register blocks (MR rows by VW * NV columns) of the 12 filters below (of each group's).
BLOCKS = [{"MR": 1, "VW": 4, "NV": 3}, {"MR": 3, "VW": 4, "NV": 1}, {"MR": 8, "VW": 2, "NV": 3}]


def conv_graph(x_shape: tuple[int, ...], **attrs) -> Graph:
    """x -> y = conv2d(x): one convolution with its own parameters."""
    full = OPS["conv2d"].check_attrs(attrs)
    specs = OPS["conv2d"].params(full, ((None, *x_shape),))
    state = tuple(StateSpec(f"y/{p.suffix}", p.shape) for p in specs)
    x = Node("x", "input", attrs=Attrs(shape=x_shape, dtype="float32"), shape=(None, *x_shape))
    node = Node("y", "conv2d", ("x",), full, params=tuple(s.name for s in state))
    return infer_shapes(Graph("conv", (x, node), ("y",), state))


def _forward(exe):
    return [lau for lau in exe.plan.bindings["y"].launches if lau.kernel == "conv2d_forward"]


def _on_path(lau) -> bool:
    """Whether conv2d.cl defines POINTWISE_ROWS for this launch (its condition, in Python)."""
    d = lau.define_map
    return ((d["KH"], d["KW"], d["SH"], d["SW"], d["PT"], d["PL"]) == (1, 1, 1, 1, 0, 0)
            and (d["OH"], d["OW"], d["CG"]) == (d["H"], d["W"], d["C"]))


# (x HxWxC, attrs, whether the 1x1 path applies): 7x5 maps (35 pixels an example); the
# strided one binds im2col and a matrix product on some devices, conv2d_forward on others.
CONV_CASES = [
    ((7, 5, 13), {}, True),
    ((7, 5, 13), {"padding": "same", "activation": "relu"}, True),
    ((7, 5, 13), {"strides": 2}, False),
    ((7, 5, 12), {"groups": 2, "filters": 24}, False),
]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b['MR']}x{b['VW']}x{b['NV']}")
@pytest.mark.parametrize("x_shape,attrs,pointwise", CONV_CASES)
def test_1x1_convolution_matches_numpy(x_shape, attrs, pointwise, block, device):
    graph = conv_graph(x_shape, **{"filters": 12, "kernel_size": 1, **attrs})
    got, ref, exe = run_both(graph, 3, device, block)
    forward = _forward(exe)
    assert [_on_path(lau) for lau in forward] == ([True] if pointwise else [False] * len(forward))
    assert_close(graph, 3, got, ref, block)


# (op, x HxWxC, gate shape): per example (rows of a block in one example or two), one gate for
# the batch, per pixel (the general path), with a residual join.
GATE_CASES = [
    ("conv2d_gated", (7, 5, 9), (1, 1, 9)),
    ("conv2d_gated", (7, 5, 9), (9,)),
    ("conv2d_gated", (7, 5, 9), (7, 5, 9)),
    ("conv2d_bn_add_gated", (7, 5, 9), (1, 1, 9)),
]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b['MR']}x{b['VW']}x{b['NV']}")
@pytest.mark.parametrize("op,x_shape,gate_shape", GATE_CASES)
def test_gated_1x1_convolution_matches_numpy(op, x_shape, gate_shape, block, device):
    graph = gated_graph(op, x_shape, gate_shape, filters=12, kernel_size=1)
    got, ref, exe = run_both(graph, 3, device, block)
    (lau,) = _forward(exe)
    assert lau.define_map["GATED"] == 1 and lau.define_map["MR"] == block["MR"]
    assert _on_path(lau)
    assert_close(graph, 3, got, ref, block)
