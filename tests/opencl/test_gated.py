"""Gated convolutions (cnnc/ir/gated.py, a squeeze-excite product folded into the convolution
that reads it) on the device against the NumPy reference in float64: the inference graph of the
op case `se_gated_convs` (every gated op, a product with two readers left unfolded, a
map-shaped gate, the im2col path) at batch 1 and 3, with the device's tiling and a GPU's local
tiles; and single gated nodes on odd shapes with gates broadcast along every combination of
axes, strides and padding, row blocks that straddle two examples, and a tuned Winograd variant,
which a gated node sets aside for the direct algorithm.

Tolerance: the gate's (cnnc/tune/gate.py), as in test_residual.py.
"""

from __future__ import annotations

import pytest
from op_cases import CASES
from test_residual import assert_close, run_both

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.ir.args import Attrs
from cnnc.ir.gated import LAYER_OF_GATED
from cnnc.ir.graph import Graph, Node, StateSpec, infer_shapes
from cnnc.ir.ops import OPS
from cnnc.passes.pipeline import inference_graph

CASE = next(c for c in CASES if c.name == "se_gated_convs")


def _target(tiling: str, device):
    if tiling == "native":
        return None
    if device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    return Target("gpu", device.compute_units, force_local_tiles=True)


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 3])
def test_se_case_inference_matches_numpy(batch, tiling, device):
    graph = inference_graph(cnnc.load_spec(CASE.spec()))
    ops = {n.name: n.op for n in graph.nodes}
    assert set(LAYER_OF_GATED) <= set(ops.values())
    assert ops["se_two"] == "multiply"  # two readers: the product is written
    report = cross_check(graph, batch, device=device.index, seed=4,
                         target=_target(tiling, device))
    report.passed_kernels()


def _input(name: str, shape: tuple[int, ...]) -> Node:
    return Node(name, "input", attrs=Attrs(shape=shape, dtype="float32"), shape=(None, *shape))


def gated_graph(op: str, x_shape: tuple[int, ...], gate_shape: tuple[int, ...],
                **attrs) -> Graph:
    """x, g[, r] -> y = op(x, g[, r]): one gated node with its own parameters."""
    full = OPS[op].check_attrs(attrs)
    layer = LAYER_OF_GATED[op]
    residual = layer.endswith("_add")
    base = OPS["conv2d"]
    out = base.infer(Attrs({k: v for k, v in full.items() if k in {a.name for a in base.args}}),
                     ((None, *x_shape),))
    shapes = ((None, *x_shape), (None, *gate_shape), *((out,) if residual else ()))
    specs = OPS[op].params(full, shapes)
    state = tuple(StateSpec(f"y/{p.suffix}", p.shape) for p in specs)
    inputs = ("x", "g", "r") if residual else ("x", "g")
    node = Node("y", op, inputs, full, params=tuple(s.name for s in state))
    nodes = [_input("x", x_shape), _input("g", gate_shape)]
    if residual:
        nodes.append(_input("r", tuple(out[1:])))
    return infer_shapes(Graph(op, (*nodes, node), ("y",), state))


# (op, batch, x HxWxC, gate shape, filters, attrs): the gate broadcast along each axis set;
# 7x5 images at batch 5 and 3 put rows of two examples in one register block.
GATE_CASES = [
    ("conv2d_gated", 5, (7, 5, 9), (1, 1, 9), 6, {}),
    ("conv2d_gated", 1, (7, 5, 9), (1, 1, 9), 6, {"kernel_size": 3, "padding": "same"}),
    ("conv2d_gated", 3, (7, 5, 9), (7, 5, 9), 6, {"kernel_size": 3, "strides": 2,
                                                   "padding": "same"}),
    ("conv2d_gated", 3, (7, 5, 9), (1, 5, 1), 5, {"kernel_size": [2, 3]}),
    ("conv2d_gated", 2, (7, 5, 9), (7, 1, 9), 7, {"kernel_size": 3, "dilation_rate": 2}),
    ("conv2d_gated", 3, (7, 5, 9), (9,), 6, {"activation": "hard_swish"}),
    ("conv2d_gated", 3, (6, 5, 3), (1, 1, 3), 4, {"kernel_size": 3}),  # im2col
    ("conv2d_gated", 2, (6, 5, 3), (6, 5, 1), 4, {"kernel_size": 3, "padding": "same"}),
    ("conv2d_bn_gated", 3, (7, 5, 12), (1, 1, 12), 8, {"activation": "relu"}),
    ("conv2d_add_gated", 1, (4, 4, 16), (1, 1, 16), 16, {}),
    ("conv2d_bn_add_gated", 5, (7, 7, 24), (1, 1, 24), 16, {"use_bias": False}),
    ("conv2d_bn_add_gated", 2, (7, 7, 10), (1, 1, 10), 10, {"kernel_size": 3,
                                                            "padding": "same"}),
]


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("op,batch,x_shape,gate_shape,filters,attrs", GATE_CASES)
def test_gated_node_matches_numpy(op, batch, x_shape, gate_shape, filters, attrs, tiling,
                                  device):
    graph = gated_graph(op, x_shape, gate_shape, filters=filters,
                        **{"kernel_size": 1, **attrs})
    got, ref, exe = run_both(graph, batch, device, None, _target(tiling, device))
    gated = [lau for lau in exe.plan.bindings["y"].launches if lau.define_map.get("GATED")]
    assert len(gated) == 1
    assert_close(graph, batch, got, ref, None)


def test_a_tuned_winograd_variant_is_set_aside(device):
    graph = gated_graph("conv2d_bn_gated", (6, 6, 8), (1, 1, 8), filters=8, kernel_size=3,
                        padding="same")
    variant = {"algo": "winograd", "wino_m": 2}
    got, ref, exe = run_both(graph, 2, device, variant)
    kernels = {lau.kernel for lau in exe.plan.bindings["y"].launches}
    assert "conv2d_forward" in kernels and not any("winograd" in k for k in kernels)
    assert_close(graph, 2, got, ref, None)


@pytest.mark.parametrize("op", ["conv2d_gated", "conv2d_bn_gated"])
def test_where_fused_winograd_is_the_default_by_rule_the_direct_kernel_runs(op, device):
    """A 3x3 convolution on a 14x14 map at batch 1, whose default on an AVX-512 CPU is the
    one-launch Winograd (winograd.wins_by_rule), which cannot gate: the direct kernel runs."""
    graph = gated_graph(op, (14, 14, 16), (1, 1, 16), filters=16, kernel_size=3,
                        padding="same")
    got, ref, exe = run_both(graph, 1, device, None)
    kernels = {lau.kernel for lau in exe.plan.bindings["y"].launches}
    assert "conv2d_forward" in kernels and not any("winograd" in k for k in kernels)
    assert_close(graph, 1, got, ref, None)
