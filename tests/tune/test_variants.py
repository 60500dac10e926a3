"""Every variant the tuner can pick, not only the default, computes what the NumPy reference
computes: on odd shapes, for each tunable op (cnnc/tune/space.py, gate.py)."""

from __future__ import annotations

import pytest
from nodes import op_nodes, tiny_inference_graph, tiny_training_graph, tunable_nodes

from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.tune.gate import Gate
from cnnc.tune.space import TUNABLE_OPS, describe, variant_space

BATCH = 3


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """The training graph, and an inference graph for the ops fused at inference alone."""
    folder = tmp_path_factory.mktemp("spec")
    return [tiny_training_graph(folder), tiny_inference_graph(folder)]


def _check_all(backend, graph, node, *, edges: bool) -> list[str]:
    gate = Gate(backend, graph, node, BATCH)
    if not edges:
        gate.cases = gate.cases[:1]
    ctx = BindContext(graph, BATCH, backend.target)
    space = variant_space(node, ctx)
    assert len(space) >= 2, "a tunable node offers variants besides the default"
    failures = []
    for variant in space:
        verdict = gate.check(variant)
        if not verdict.admitted:
            failures.append(f"{describe(variant)}: {verdict.reason}")
    return failures


@pytest.mark.parametrize("op", TUNABLE_OPS)
def test_every_variant_matches_the_reference(device, graphs, op):
    """The real (odd) shape of one node per op, every variant of the device's own space."""
    backend = OpenCLBackend(device)
    graph, (node, *_) = op_nodes(graphs, op)
    assert _check_all(backend, graph, node, edges=False) == []


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["own", "gpu"])
def test_every_variant_of_every_node_on_edge_shapes(device, graphs, kind):
    """Every node, every variant, every edge shape; also with a GPU's tiling (local tiles)."""
    target = Target("gpu", device.compute_units, force_local_tiles=True) if kind == "gpu" else None
    backend = OpenCLBackend(device, target=target)
    failures = []
    for graph in graphs:
        for node in tunable_nodes(graph):
            failures += [f"{node.name}: {f}"
                         for f in _check_all(backend, graph, node, edges=True)]
    assert failures == []


FOLDED_SPEC = """
network: tiny_folded
input: [6, 5, 7]
layers:
  - {conv2d: [8, 3], padding: same, use_bias: false}
  - batchnorm
  - {activation: relu}
  - {conv2d: [8, 3], padding: valid}
  - batchnorm
  - flatten
  - {dense: 8}
  - batchnorm
  - {dense: 3, activation: softmax}
"""


def test_folded_batchnorm_nodes_are_tuned_as_their_layer(device, tmp_path):
    """conv2d_bn and dense_bn (inference graphs fold batch norm into the layer before it) take
    their layer's variants, Winograd included for the 3x3 convolutions, and every variant
    matches the reference, the batch norm's moving statistics folded in."""
    from cnnc.frontend.spec import load_spec
    from cnnc.passes.pipeline import inference_graph

    path = tmp_path / "folded.yaml"
    path.write_text(FOLDED_SPEC)
    graph = inference_graph(load_spec(str(path)))
    backend = OpenCLBackend(device)
    folded = [n for n in graph.nodes if n.op in ("conv2d_bn", "dense_bn")]
    assert sorted(n.op for n in folded) == ["conv2d_bn", "conv2d_bn", "dense_bn"]
    ctx = BindContext(graph, BATCH, backend.target)
    for node in folded:
        space = variant_space(node, ctx)
        if node.op == "conv2d_bn":
            assert any(v.get("algo") == "winograd" for v in space)
        assert _check_all(backend, graph, node, edges=False) == [], node.name


FEW_CHANNELS_SPEC = """
network: tiny_few
input: [6, 5, 2]
layers:
  - {conv2d: [8, 3], padding: same, activation: relu}
  - flatten
  - {dense: 3, activation: softmax}
train:
  dataset: fashion_mnist
  batch_size: 3
  optimizer: {name: sgd, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
"""


def test_few_channels_also_try_the_implicit_gemm(device, tmp_path):
    """A convolution with 2 input channels runs conv2d_rows.cl forward and, for the kernel
    gradient, conv2d_grad_rows.cl on a CPU, else copies its windows out (im2col); its space also holds the implicit GEMM ("im2col": 0) for the forward pass and the kernel
    gradient, which then binds conv2d.cl's kernels and matches the reference (the gate's shapes)."""
    from cnnc.frontend.spec import load_spec
    from cnnc.passes.pipeline import training_graph

    path = tmp_path / "few.yaml"
    path.write_text(FEW_CHANNELS_SPEC)
    graph = training_graph(load_spec(str(path)))
    backend = OpenCLBackend(device)
    ctx = BindContext(graph, BATCH, backend.target)
    for node in tunable_nodes(graph, ("conv2d", "conv2d_grad_kernel")):
        direct = [v for v in variant_space(node, ctx) if v.get("im2col") == 0]
        assert direct, node.name
        plan_kernels = {
            lau.kernel
            for lau in backend.compile(graph, BATCH).plan.bindings[node.name].launches
        }
        # the default: the forward pass's row kernel (bind_conv_rows.py), the kernel gradient's
        # row kernel on a CPU (bind_grad_rows.py), im2col elsewhere
        default = ("conv2d_rows" if node.op == "conv2d" else "conv2d_grad_kernel_rows"
                   if backend.target.kind == "cpu" else "im2col")
        assert default in plan_kernels
        backend.choose_variants = lambda g, b, v=direct[0], n=node.name: {n: v}
        plan_kernels = {
            lau.kernel
            for lau in backend.compile(graph, BATCH).plan.bindings[node.name].launches
        }
        backend.choose_variants = lambda g, b: {}
        assert "im2col" not in plan_kernels and plan_kernels & {
            "conv2d_forward", "conv2d_grad_kernel"
        }, plan_kernels
        gate = Gate(backend, graph, node, BATCH)  # the real shape and the edge shapes
        for variant in direct:
            verdict = gate.check(variant)
            assert verdict.admitted, f"{node.name} {describe(variant)}: {verdict.reason}"
