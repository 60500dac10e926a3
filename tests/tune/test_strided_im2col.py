"""Strided convolutions with more than im2col's few channels: the tuner also offers their
windows copied out ("im2col": 1, algorithms.py: _im2col_forms), forward and kernel gradient,
and every such variant computes what the NumPy reference computes (the gate: the node's shape
and its edge shapes, at batch 1 and 7)."""

from __future__ import annotations

import pytest

from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import as_layer, describe, family, tunable, variant_space

# Odd maps, 6 input channels (above im2col's 4): a 3x3 stride-2 'same' convolution with a batch
# norm (folded at inference), a 1x1 stride-2 'valid' one and a 3x3 stride-2 'valid' one
# reading the same map (resnet_mini's downsampling block's shapes, small), and a stride-1 one
# that must not be offered the copy.
SPEC = """
network: tiny_strided
input: [9, 7, 6]
layers:
  - {conv2d: [6, 3], padding: same, activation: relu, name: s1}
  - {conv2d: [8, 3], strides: 2, padding: same, use_bias: false, inputs: [s1], name: s2}
  - {batchnorm: null, name: s2_bn}
  - {activation: relu, name: s2_out}
  - {conv2d: [8, 1], strides: 2, inputs: [s1], name: short}
  - {conv2d: [8, 3], strides: 2, padding: valid, inputs: [s1], name: valid}
  - {flatten: null, inputs: [s2_out], name: f1}
  - {flatten: null, inputs: [short], name: f2}
  - {flatten: null, inputs: [valid], name: f3}
  - concatenate: {inputs: [f1, f2, f3]}
  - {dense: 4, activation: softmax}
train:
  dataset: fashion_mnist
  batch_size: 3
  optimizer: {name: sgd, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
"""


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "tiny_strided.yaml"
    path.write_text(SPEC)
    spec = load_spec(str(path))
    return [training_graph(spec), inference_graph(load_spec(str(path)))]


def _strided(graph):
    return [n for n in graph.nodes if tunable(n)
            and as_layer(n).op in ("conv2d", "conv2d_grad_kernel")
            and max(as_layer(n).attrs["strides"]) > 1]


def _kernels(backend, graph, node, variant, batch):
    backend.choose_variants = lambda g, b: {node.name: variant}
    try:
        return {lau.kernel for lau in
                backend.compile(graph, batch).plan.bindings[node.name].launches}
    finally:
        backend.choose_variants = lambda g, b: {}


def test_strided_convolutions_offer_their_windows_copied_out(device, graphs):
    backend = OpenCLBackend(device)
    training = graphs[0]
    nodes = [(g, n) for g in graphs for n in _strided(g)]
    ops = sorted({n.op for _, n in nodes})
    # forward (plain and with the folded batch norm) and the kernel gradient, all three maps
    assert ops == ["conv2d", "conv2d_bn", "conv2d_grad_kernel"], ops
    assert len([n for _, n in nodes if n.op == "conv2d_grad_kernel"]) == 3
    for graph, node in nodes:
        ctx = BindContext(graph, 3, backend.target)
        space = variant_space(node, ctx)
        copied = [v for v in space if v.get("im2col") == 1]
        assert copied, node.name
        # its own family: losing sets aside only the copy, not the implicit GEMM's tiles
        assert family(copied[0]) != family(space[0])
        assert "im2col" in describe(copied[0])
        assert "im2col" not in _kernels(backend, graph, node, space[0], 3)
        assert "im2col" in _kernels(backend, graph, node, copied[0], 3), node.name
    # a stride-1 convolution of as many channels keeps the implicit GEMM alone
    s1 = next(n for n in training.nodes if n.name == "s1")
    assert all("im2col" not in v for v in
               variant_space(s1, BindContext(training, 3, backend.target)))


@pytest.mark.parametrize("batch", [1, 7])
def test_copied_windows_match_the_reference(device, graphs, batch):
    """Every im2col variant of every strided node, on its shape and the gate's edge shapes."""
    backend = OpenCLBackend(device)
    failures = []
    checked = 0
    for graph in graphs:
        ctx = BindContext(graph, batch, backend.target)
        for node in _strided(graph):
            gate = Gate(backend, graph, node, batch)
            for variant in variant_space(node, ctx):
                if variant.get("im2col") != 1:
                    continue
                checked += 1
                verdict = gate.check(variant)
                if not verdict.admitted:
                    failures.append(f"{node.name} {describe(variant)}: {verdict.reason}")
    assert checked >= 6
    assert failures == []


def _grad_kernels(graph):
    return [n for n in graph.nodes if tunable(n) and n.op == "conv2d_grad_kernel"]


def test_kernel_gradients_offer_synchronised_parts_on_cpus(device, graphs):
    """Each direct kernel gradient (strided or not) also offers its parts' blocks in one
    work-group waiting for each other every 64 pixels (conv2d.cl's SYNC_STEPS); GPUs do not."""
    from cnnc.backends.opencl.target import Target

    backend = OpenCLBackend(device)
    training = graphs[0]
    nodes = _grad_kernels(training)
    assert len(nodes) == 4
    for node in nodes:
        ctx = BindContext(training, 7, backend.target)
        space = variant_space(node, ctx)
        synced = [v for v in space if v.get("sync")]
        if backend.target.kind != "cpu":
            assert synced == []
            continue
        assert synced and all(v["algo"] == "direct" for v in synced), node.name
        assert family(synced[0]) == family(space[0])
        assert "sync=64" in describe(synced[0])
        backend.choose_variants = lambda g, b, v=synced[0], n=node.name: {n: v}
        main = backend.compile(training, 7).plan.bindings[node.name].launches[0]
        backend.choose_variants = lambda g, b: {}
        assert main.kernel == "conv2d_grad_kernel"
        assert dict(main.defines)["SYNC_STEPS"] == 64
        # one part per work-group, and every column block of its row blocks
        assert main.local_size[2] == 1 and main.local_size[1] == main.global_size[1]
        assert main.global_size[0] % main.local_size[0] == 0
    gpu = Target("gpu", device.compute_units, force_local_tiles=True)
    for node in nodes:
        ctx = BindContext(training, 7, gpu)
        assert not any(v.get("sync") for v in variant_space(node, ctx))


@pytest.mark.parametrize("batch", [1, 7])
def test_synchronised_parts_match_the_reference(device, graphs, batch):
    """Every sync variant of every kernel gradient, its shape and the gate's edge shapes: maps
    of 5x4 pixels and fewer at batch 1 (one chunk, shorter than 64), 140 at batch 7 (a last
    chunk cut short), rows that are no multiple of the block."""
    backend = OpenCLBackend(device)
    if backend.target.kind != "cpu":
        pytest.skip("SYNC_STEPS is offered on CPU devices only")
    training = graphs[0]
    ctx = BindContext(training, batch, backend.target)
    failures = []
    checked = 0
    for node in _grad_kernels(training):
        gate = Gate(backend, training, node, batch)
        for variant in variant_space(node, ctx):
            if not variant.get("sync"):
                continue
            checked += 1
            verdict = gate.check(variant)
            if not verdict.admitted:
                failures.append(f"{node.name} {describe(variant)}: {verdict.reason}")
    assert checked >= 4
    assert failures == []
