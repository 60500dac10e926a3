"""The residual ops (cnnc/ir/residual.py) on the device against the NumPy reference in float64:
each binding of the layer they run as (the implicit GEMM, im2col + GEMM, Winograd F(2x2) and
F(4x4) with batch chunks and a tuner's GEMM tile, Winograd in one launch (winograd_fused),
dense's GEMM, batch norm in training (batchnorm_train_add), and a GPU's local-memory tiles
on whatever device there is) adding the residual in its epilogue, on odd shapes, with every
element-wise activation; the tuner's gate on residual nodes (a residual that is the layer's own
input too); and every variant the tuner can pick (slow).

Tolerance: the gate's (cnnc/tune/gate.py): float32's, relative to max|reference|, times the
square root of the terms summed, times the variant's error factor (Winograd's).
"""

from __future__ import annotations

from math import sqrt

import numpy as np
import pytest
from op_cases import CASES

import cnnc
from cnnc.backends.numpy.call import Call
from cnnc.backends.numpy.table import IMPLS
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import LOCAL_TOLERANCE, errors
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node, StateSpec, infer_shapes
from cnnc.ir.ops import OPS
from cnnc.ir.residual import LAYER_OF
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import describe, error_factor, variant_space

BN = ("gamma", "beta", "moving_mean", "moving_variance")


def _input(name: str, shape: tuple[int, ...]) -> Node:
    return Node(name, "input", attrs=Attrs(shape=shape, dtype="float32"), shape=(None, *shape))


def residual_graph(op: str, x_shape: tuple[int, ...], **attrs) -> Graph:
    """x, r -> y = op(x, r): one residual node with its own parameters (y/kernel, y/bias, and
    a folded batch norm's y/gamma ... y/moving_variance)."""
    full = OPS[op].check_attrs(attrs)
    layer_out = OPS[LAYER_OF[op]].infer(full, ((None, *x_shape),))
    out = tuple(layer_out[1:])
    specs = OPS[op].params(full, ((None, *x_shape), layer_out))
    state = tuple(StateSpec(f"y/{p.suffix}", p.shape) for p in specs)
    node = Node("y", op, ("x", "r"), full, params=tuple(s.name for s in state))
    g = Graph(op, (_input("x", x_shape), _input("r", out), node), ("y",), state)
    return infer_shapes(g)


def run_both(graph: Graph, batch: int, device, variant: dict | None, target=None,
             isolate: bool = False):
    """(OpenCL output with `variant` on node 'y', the NumPy float64 reference, the executable);
    isolate: every tensor in its own allocation (for Oclgrind)."""
    rng = np.random.default_rng(batch * 13 + len(graph.state))
    values = {n.name: rng.standard_normal((batch, *n.shape[1:])).astype(np.float32)
              for n in graph.nodes if n.op == "input"}
    for s in graph.state:
        values[s.name] = rng.standard_normal(s.shape).astype(np.float32)
        if s.name.endswith("moving_variance"):
            values[s.name] = np.abs(values[s.name]) + np.float32(0.5)
    backend = OpenCLBackend(device, target=target, isolate=isolate)
    if variant is not None:
        backend.choose_variants = lambda g, b: {"y": variant}
    backend.init_state(graph.state, values)
    exe = backend.compile(graph, batch)
    got = exe.run({n: values[n] for n in graph.inputs}, ["y"])["y"]
    node = graph.node("y")
    operands = [values[v].astype(np.float64) for v in node.operands]
    ref = IMPLS[node.op](Call(node=node, dtype=np.dtype(np.float64)), *operands)
    return got, ref, exe


def close(graph: Graph, batch: int, got, ref, variant: dict | None) -> tuple[bool, str]:
    """Whether `got` is within the gate's tolerance of `ref`, and the error against it."""
    node = graph.node("y")
    terms = node.opdef.reduction(node.attrs, tuple(graph.concrete_shape(v, batch)
                                                   for v in node.inputs))
    tol = LOCAL_TOLERANCE * sqrt(terms) * error_factor(node, variant or {})
    _, rel = errors(ref, got)
    return rel <= tol, f"error {rel:.2e} of max|reference|, tolerance {tol:.2e}"


def assert_close(graph: Graph, batch: int, got, ref, variant: dict | None) -> None:
    ok, how = close(graph, batch, got, ref, variant)
    assert ok, how


def _stores(exe) -> list:
    """The launches that store y, with their defines."""
    return [lau for lau in exe.plan.bindings["y"].launches
            if lau.define_map.get("HAS_RESIDUAL") == 1]


WINO2 = {"algo": "winograd", "wino_m": 2}
DIRECT = {"algo": "direct"}
WINO4_CHUNKED = {"algo": "winograd", "wino_m": 4, "wino_chunk": 5,
                 "wino_tile": {"MR": 3, "VW": 8, "NV": 2}}

# (op, batch, input HxWxC, filters, extra attrs, variant, the kernel that stores y): sizes no
# tile divides, channels no vector width divides, strides, valid padding, 1x1 images.
CONV_CASES = [
    ("conv2d_add", 3, (5, 7, 6), 8, {"padding": "same"}, None, "conv2d_forward"),
    ("conv2d_bn_add", 2, (7, 6, 5), 6, {"strides": 2, "padding": "same", "use_bias": False},
     None, "conv2d_forward"),
    ("conv2d_add", 3, (5, 6, 3), 5, {"padding": "valid"}, DIRECT, "matmul"),  # im2col
    ("conv2d_bn_add", 1, (1, 1, 2), 4, {"padding": "same"}, DIRECT, "matmul"),
    # few channels: the row kernel by default (bind_conv_rows.py)
    ("conv2d_add", 3, (5, 6, 3), 5, {"padding": "valid"}, None, "conv2d_rows"),
    ("conv2d_bn_add", 1, (1, 1, 2), 4, {"padding": "same"}, None, "conv2d_rows"),
    ("conv2d_add", 3, (5, 7, 6), 8, {"padding": "same", "use_bias": False}, WINO2,
     "winograd_output"),
    ("conv2d_bn_add", 2, (6, 9, 8), 16, {"padding": "same"}, WINO4_CHUNKED, "winograd_output"),
    ("conv2d_bn_add", 3, (5, 5, 3), 5, {"padding": "valid"}, WINO2, "winograd_output"),
    ("conv2d_bn_add", 3, (5, 7, 6), 8, {"padding": "same"},
     {"algo": "winograd", "wino_m": 2, "wino_fused": 2}, "winograd_fused"),
    ("conv2d_add", 2, (6, 5, 4), 32, {"padding": "valid", "use_bias": False},  # 2 filter blocks
     {"algo": "winograd", "wino_m": 4, "wino_fused": 3}, "winograd_fused"),
]
ACTS = ["relu", "leaky_relu", "relu6", "elu", "sigmoid", "tanh", "linear"]


def _conv_id(case) -> str:
    op, batch, shape, f, _, variant, kernel = case
    how = describe(variant) if variant else "default"
    return f"{op}-{batch}x{'x'.join(map(str, shape))}-{f}-{how}-{kernel}"


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_convolution_bindings_add_the_residual(device, case, tiling):
    op, batch, shape, f, extra, variant, kernel = case
    i = CONV_CASES.index(case)
    act = ACTS[i % len(ACTS)] if tiling == "native" else ACTS[(i + 3) % len(ACTS)]
    graph = residual_graph(op, shape, filters=f, kernel_size=3, activation=act, **extra)
    target = None
    if tiling == "gpu-tiling":
        if device.kind == "gpu":
            pytest.skip("the native tiling of a GPU device is the GPU tiling")
        target = Target("gpu", device.compute_units, force_local_tiles=True)
    got, ref, exe = run_both(graph, batch, device, variant, target)
    assert [lau.kernel for lau in _stores(exe)][:1] == [kernel]
    assert_close(graph, batch, got, ref, variant)


@pytest.mark.parametrize("op", ["dense_add", "dense_bn_add"])
@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
def test_dense_bindings_add_the_residual(device, op, tiling):
    target = None
    if tiling == "gpu-tiling":
        if device.kind == "gpu":
            pytest.skip("the native tiling of a GPU device is the GPU tiling")
        target = Target("gpu", device.compute_units, force_local_tiles=True)
    act = "elu" if op == "dense_add" else "relu"
    graph = residual_graph(op, (9,), units=6, activation=act)
    got, ref, exe = run_both(graph, 5, device, None, target)
    assert [lau.kernel for lau in _stores(exe)] == ["matmul"]
    assert_close(graph, 5, got, ref, None)


def test_every_activation_on_the_implicit_gemm(device):
    """Each element-wise activation after the residual (the bias and residual added first)."""
    for act in ACTS:
        graph = residual_graph("conv2d_add", (4, 5, 6), filters=8, kernel_size=3,
                               padding="same", activation=act)
        got, ref, _ = run_both(graph, 2, device, None)
        assert_close(graph, 2, got, ref, None)


def test_the_gate_checks_residual_nodes_on_edge_shapes(device):
    """The tuner's gate runs a residual node on its edge shapes, its residual shaped like the
    output there, also where the residual is the layer's own input (add(conv(x), x))."""
    case = next(c for c in CASES if c.name == "residual_joins")
    graph = inference_graph(cnnc.load_spec(case.spec()))
    node = graph.node("r1")
    assert node.op == "conv2d_add" and node.inputs == ("input_layer", "input_layer")
    gate = Gate(OpenCLBackend(device), graph, node, 3)
    assert len(gate.cases) == 3
    verdict = gate.check({})
    assert verdict.admitted, verdict.reason


def _residual_nodes(graph):
    return [n for n in graph.nodes if n.op.endswith("_add")]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["own", "gpu"])
def test_every_variant_of_every_residual_node_on_edge_shapes(device, kind):
    """Every variant the tuner can pick for each residual op, on the real and edge shapes."""
    target = Target("gpu", device.compute_units, force_local_tiles=True) if kind == "gpu" else None
    backend = OpenCLBackend(device, target=target)
    case = next(c for c in CASES if c.name == "residual_joins")
    graph = inference_graph(cnnc.load_spec(case.spec()))
    spec = cnnc.load_spec("specs/resnet_mini.yaml")
    failures = []
    for g in (graph, inference_graph(spec)):
        ctx = BindContext(g, 3, backend.target)
        for node in _residual_nodes(g):
            gate = Gate(backend, g, node, 3)
            for variant in variant_space(node, ctx):
                verdict = gate.check(variant)
                if not verdict.admitted:
                    failures.append(f"{node.name}: {describe(variant)}: {verdict.reason}")
    assert failures == []
