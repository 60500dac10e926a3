"""The depthwise convolutions' direct gradient kernels (kernels/depthwise_grad.cl) on the device
against the NumPy reference in float64, through the tuner's correctness gate (the node alone on
its real shape, on odd sizes and on a 1x1 output at batch 1): strides 1, 2 and (1, 2), dilation
2, 'same' and 'valid', odd sizes and channel counts, depth multipliers 2 and 3, 7x7 kernels,
register blocks that do not divide the taps or pixels, one and several row chunks. The grouped
conv2d gradients (algorithm "grouped") must agree with them on the same inputs, and both must be
what the training graphs bind (direct by default)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import errors
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import training_graph
from cnnc.tune.gate import Gate, cases, random_values, run_case, tolerance

GRAD_OPS = ("depthwise_conv2d_grad_input", "depthwise_conv2d_grad_kernel")

# (label, input shape, depthwise layer, batch): the layer follows a 1x1 conv2d so that its
# input gradient is part of the training graph.
GEOMETRIES = [
    ("3x3 same, 16 channels", (7, 9, 16), {"depthwise_conv2d": 3, "padding": "same"}, 2),
    ("3x3 stride 2 same, batch 1", (9, 8, 6),
     {"depthwise_conv2d": 3, "strides": 2, "padding": "same"}, 1),
    ("3x2 stride 2 valid, 5 channels, multiplier 2", (8, 7, 5),
     {"depthwise_conv2d": [3, 2], "strides": 2, "depth_multiplier": 2}, 3),
    ("3x3 dilation 2 same", (9, 9, 12),
     {"depthwise_conv2d": 3, "dilation_rate": 2, "padding": "same"}, 2),
    ("5x5 stride (1, 2) same, multiplier 3", (11, 10, 8),
     {"depthwise_conv2d": 5, "strides": [1, 2], "padding": "same", "depth_multiplier": 3}, 2),
    ("7x7 same, 24 channels", (8, 8, 24), {"depthwise_conv2d": 7, "padding": "same"}, 2),
]


def _spec(shape, layer) -> dict:
    return {"network": "dw", "input": list(shape),
            "layers": [{"conv2d": [shape[-1], 1]}, {**layer, "use_bias": False},
                       "flatten", {"dense": 3, "activation": "softmax"}]}


def _graph(shape, layer):
    return training_graph(load_spec(_spec(shape, layer)), wrt_inputs=True)


def _grad_nodes(graph):
    nodes = [n for n in graph.nodes if n.op in GRAD_OPS]
    assert sorted(n.op for n in nodes) == sorted(GRAD_OPS)
    return nodes


@pytest.mark.parametrize("target", [Target("cpu", 2, native_vector=16), Target("gpu", 8)],
                         ids=["cpu", "gpu"])
def test_the_direct_kernels_are_the_default(target):
    for _, shape, layer, batch in GEOMETRIES:
        graph = _graph(shape, layer)
        plan = make_plan(graph, batch, target)
        for node in _grad_nodes(graph):
            kernels = {lau.kernel for lau in plan.bindings[node.name].launches}
            assert kernels & {"depthwise_grad_input", "depthwise_grad_kernel"}, node.name
        grouped = {n.name: {"algo": "grouped"} for n in _grad_nodes(graph)}
        plan = make_plan(graph, batch, target, variants=grouped)
        for node in _grad_nodes(graph):
            kernels = {lau.file for lau in plan.bindings[node.name].launches}
            assert "conv2d.cl" in kernels, node.name


def test_separable_convolutions_use_the_direct_kernels():
    spec = {"network": "sep", "input": [8, 7, 6],
            "layers": [{"separable_conv2d": [4, 3], "strides": 2, "padding": "same"}]}
    graph = training_graph(load_spec(spec), wrt_inputs=True)
    plan = make_plan(graph, 2, Target("cpu", 2))
    kernels = {lau.kernel for _, lau in plan.launches()}
    assert {"depthwise_grad_input", "depthwise_grad_kernel"} <= kernels


def _variants(node, index: int):
    """The default, and a register block (and row chunks) the default does not take: 3 or 4
    rows by one channel, or 2 rows by 2 x 2 channels (where 4 divide the columns), by turns."""
    c = node.attrs["input_shape"][-1]
    cols = c if node.op == "depthwise_conv2d_grad_input" else c * node.attrs["depth_multiplier"]
    if index % 2 == 0 or cols % 4:
        other = {"MR": 3, "VW": 1, "NV": 1, "split": 1}
    else:
        other = {"MR": 2, "VW": 2, "NV": 2, "split": 5}
    if node.op == "depthwise_conv2d_grad_input":
        other.pop("split")
    return [{"algo": "depthwise"}, {"algo": "depthwise", **other}]


@pytest.mark.parametrize("index", range(len(GEOMETRIES)), ids=[g[0] for g in GEOMETRIES])
def test_direct_gradients_match_numpy(index, backend):
    _, shape, layer, batch = GEOMETRIES[index]
    graph = _graph(shape, layer)
    for node in _grad_nodes(graph):
        gate = Gate(backend, graph, node, batch)
        for variant in _variants(node, index):
            verdict = gate.check(variant)
            assert verdict.admitted, f"{node.op} {variant}: {verdict.reason}"


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
def test_direct_and_grouped_agree(geometry, backend):
    _, shape, layer, batch = geometry
    graph = _graph(shape, layer)
    for node in _grad_nodes(graph):
        real = cases(graph, node, batch)[0]
        values = random_values(real.graph, real.batch, seed=3)
        got = {}
        for algo in ("depthwise", "grouped"):
            backend.choose_variants = lambda g, b, n=node.name, a=algo: {n: {"algo": a}}
            got[algo] = run_case(backend, real, values)
        assert got["depthwise"].shape == got["grouped"].shape
        _, rel = errors(got["grouped"].astype(np.float64), got["depthwise"])
        assert rel <= 2 * tolerance(real, {}), f"{node.op}: {rel:.2e}"


def test_gpu_tiling_matches_numpy(device):
    """A GPU's tile choices (narrow vectors, split reductions by work-items) on this device."""
    from cnnc.backends.opencl.runtime import OpenCLBackend

    backend = OpenCLBackend(device, target=Target("gpu", device.compute_units))
    _, shape, layer, batch = GEOMETRIES[2]
    graph = _graph(shape, layer)
    ctx = BindContext(graph, batch, backend.target)
    for node in _grad_nodes(graph):
        assert ctx.variant(node) == {}
        verdict = Gate(backend, graph, node, batch).check({"algo": "depthwise"})
        assert verdict.admitted, f"{node.op}: {verdict.reason}"
