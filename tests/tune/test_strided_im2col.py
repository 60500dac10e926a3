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
def graphs():
    spec = load_spec(SPEC, name="tiny_strided")
    return [training_graph(spec), inference_graph(load_spec(SPEC, name="tiny_strided"))]


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
    """The 3x3 strided ones offer the copy; the 1x1 strided forward pass copies by default on a
    CPU (primitives.strided_copies) and offers the implicit GEMM instead."""
    backend = OpenCLBackend(device)
    training = graphs[0]
    cpu = backend.target.kind == "cpu"
    nodes = [(g, n) for g in graphs for n in _strided(g)]
    ops = sorted({n.op for _, n in nodes})
    # forward (plain and with the folded batch norm) and the kernel gradient, all three maps
    assert ops == ["conv2d", "conv2d_bn", "conv2d_grad_kernel"], ops
    assert len([n for _, n in nodes if n.op == "conv2d_grad_kernel"]) == 3
    for graph, node in nodes:
        ctx = BindContext(graph, 3, backend.target)
        space = variant_space(node, ctx)
        copies_by_default = (cpu and node.op != "conv2d_grad_kernel"
                             and as_layer(node).attrs["kernel_size"] == (1, 1))
        other = [v for v in space if v.get("im2col") == (0 if copies_by_default else 1)]
        assert other, node.name
        # its own family: losing sets aside only that form, not the default's tiles
        assert family(other[0]) != family(space[0])
        assert "im2col" in describe(other[0])
        assert ("im2col" in _kernels(backend, graph, node, space[0], 3)) == copies_by_default
        assert ("im2col" in _kernels(backend, graph, node, other[0], 3)) != copies_by_default
    # a stride-1 convolution of as many channels keeps the implicit GEMM alone
    s1 = next(n for n in training.nodes if n.name == "s1")
    assert all("im2col" not in v for v in
               variant_space(s1, BindContext(training, 3, backend.target)))


@pytest.mark.parametrize("batch", [1, 7])
def test_copied_windows_match_the_reference(device, graphs, batch):
    """Every im2col form and default of every strided node, its shape and the edge shapes."""
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


def _main_launch(backend, graph, node, variant, batch):
    backend.choose_variants = lambda g, b: {node.name: variant}
    try:
        return backend.compile(graph, batch).plan.bindings[node.name].launches[0]
    finally:
        backend.choose_variants = lambda g, b: {}


def test_kernel_gradients_offer_synchronised_parts_on_cpus(device, graphs):
    """On a CPU a strided kernel gradient's blocks of one part wait for each other every 64
    pixels by default (conv2d.cl's SYNC_STEPS), and it offers them apart ("sync": 0); a stride-1
    one the other way round. GPUs never synchronise them."""
    from cnnc.backends.opencl.target import Target

    backend = OpenCLBackend(device)
    training = graphs[0]
    nodes = _grad_kernels(training)
    assert len(nodes) == 4
    for node in nodes:
        ctx = BindContext(training, 7, backend.target)
        space = variant_space(node, ctx)
        other = [v for v in space if "sync" in v]
        if backend.target.kind != "cpu":
            assert other == []
            continue
        strided = max(node.attrs["strides"]) > 1
        assert other and all(v["algo"] == "direct" for v in other), node.name
        assert [v["sync"] for v in other] == [0 if strided else 64] * len(other)
        assert family(other[0]) == family(space[0])
        assert f"sync={64}" in describe(other[0]) or strided
        for variant, synced in ((space[0], strided), (other[0], not strided)):
            main = _main_launch(backend, training, node, variant, 7)
            assert main.kernel == "conv2d_grad_kernel"
            assert dict(main.defines).get("SYNC_STEPS", 0) == (64 if synced else 0)
            if synced:
                # one part per work-group, and every column block of its row blocks
                assert main.local_size[2] == 1 and main.local_size[1] == main.global_size[1]
                assert main.global_size[0] % main.local_size[0] == 0
    gpu = Target("gpu", device.compute_units, force_local_tiles=True)
    for node in nodes:
        ctx = BindContext(training, 7, gpu)
        assert not any("sync" in v for v in variant_space(node, ctx))
        main = _main_launch(OpenCLBackend(device, target=gpu), training, node, {}, 7)
        assert "SYNC_STEPS" not in dict(main.defines)


@pytest.mark.parametrize("batch", [1, 7])
def test_synchronised_parts_match_the_reference(device, graphs, batch):
    """Every direct variant of every kernel gradient (synchronised by default where strided,
    by "sync": 64 where not, or not: "sync": 0), its shape and the gate's edge shapes: maps
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
            if variant.get("algo") != "direct" or variant.get("im2col") == 1:
                continue  # every direct variant: synchronised or not, the default's and others
            checked += 1
            verdict = gate.check(variant)
            if not verdict.admitted:
                failures.append(f"{node.name} {describe(variant)}: {verdict.reason}")
    assert checked >= 4
    assert failures == []
