"""Strided input gradients in the tuner (cnnc/tune/space.py, cnnc/backends/opencl/strided_grad.py):
by phases by default, the direct kernel as the other variant, every variant within the device's
limits, admitted by the correctness gate; and a wrong phases kernel refused by it."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from cnnc.backends.opencl import bind
from cnnc.backends.opencl.launches import BindContext, NodeBinding
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Limits, Target
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import training_graph
from cnnc.tune.cache import variant_problem
from cnnc.tune.gate import Gate
from cnnc.tune.space import default_variant, describe, tunable, variant_space

AVX2 = Target("cpu", 2, native_vector=8)
AVX512 = Target("cpu", 2, native_vector=16)
SMALL_GPU = Target("gpu", 4, Limits(max_group=128, max_item_sizes=(128, 128, 64),
                                    local_memory=16 * 1024), force_local_tiles=True)

# A stride-2 3x3 convolution (7x5 -> 4x3, 'same') and a stride-3 1x1 one (valid): sizes the
# strides do not divide; 6 and 9 input channels (no wide vector divides them).
SPEC = """
network: tiny_strided
input: [7, 5, 3]
layers:
  - {conv2d: [6, 3], padding: same, activation: relu}
  - {conv2d: [8, 3], strides: 2, padding: same, activation: relu}
  - {conv2d: [9, 1], padding: same, activation: relu}
  - {conv2d: [4, 1], strides: 3, activation: relu}
  - flatten
  - {dense: 3, activation: softmax}
train:
  dataset: fashion_mnist
  batch_size: 3
  optimizer: {name: sgd, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
"""
BATCH = 3


@pytest.fixture(scope="module")
def graph():
    return training_graph(load_spec(SPEC, name="tiny_strided"))


def _strided_grads(graph):
    found = [n for n in graph.nodes if n.op == "conv2d_grad_input" and tunable(n)
             and max(n.attrs["strides"]) > 1]
    assert len(found) == 2, [n.name for n in graph.nodes]
    return found


@pytest.mark.parametrize("target", [AVX2, AVX512, SMALL_GPU], ids=["avx2", "avx512", "gpu"])
def test_phases_are_the_default_and_direct_a_variant(graph, target):
    for node in _strided_grads(graph):
        ctx = BindContext(graph, BATCH, target)
        space = variant_space(node, ctx)
        assert space[0] == default_variant(node, ctx) and space[0]["algo"] == "phases"
        assert {**space[0], "algo": "direct"} in space
        assert 3 <= len(space) <= 20 and len({describe(v) for v in space}) == len(space)
        for variant in space:
            assert variant_problem(variant) is None
            plan = make_plan(graph, BATCH, target, variants={node.name: variant})
            kernels = {lau.kernel for lau in plan.bindings[node.name].launches}
            want = ("conv2d_grad_input_phases" if variant["algo"] == "phases"
                    else "conv2d_grad_input")
            assert want in kernels
            for lau in plan.bindings[node.name].launches:
                if lau.local_size is not None:
                    assert math.prod(lau.local_size) <= target.limits.max_group
    # Stride 1: no phases in the space.
    ctx = BindContext(graph, BATCH, target)
    plain = [n for n in graph.nodes if n.op == "conv2d_grad_input" and n not in
             _strided_grads(graph)]
    for node in plain:
        assert all(v.get("algo") != "phases" for v in variant_space(node, ctx))


def test_every_variant_passes_the_gate(device, graph):
    backend = OpenCLBackend(device)
    failures = []
    for node in _strided_grads(graph):
        gate = Gate(backend, graph, node, BATCH)
        for variant in variant_space(node, BindContext(graph, BATCH, backend.target)):
            verdict = gate.check(variant)
            if not verdict.admitted:
                failures.append(f"{node.name} {describe(variant)}: {verdict.reason}")
    assert failures == []


def _wrong_phases(original):
    """The input gradient's binder, but its phases kernel takes every tap as its phase's next
    (TSH = TSW = 1): it builds, runs in bounds, and sums the wrong taps."""

    def binder(node, ctx: BindContext) -> NodeBinding:
        binding = original(node, ctx)
        launches = []
        for lau in binding.launches:
            if lau.kernel == "conv2d_grad_input_phases":
                defines = {**dict(lau.defines), "TSH": 1, "TSW": 1}
                lau = replace(lau, defines=tuple(sorted(defines.items())))
            launches.append(lau)
        return replace(binding, launches=tuple(launches))

    return binder


def test_gate_refuses_a_wrong_phases_kernel(device, graph, monkeypatch):
    original = bind.BINDERS["conv2d_grad_input"]
    monkeypatch.setitem(bind.BINDERS, "conv2d_grad_input", _wrong_phases(original))
    backend = OpenCLBackend(device)
    # the 3x3 one (for a 1x1 kernel the wrong taps are the right ones: tap 0, phase 0)
    (node,) = [n for n in _strided_grads(graph) if n.attrs["kernel_size"] == (3, 3)]
    gate = Gate(backend, graph, node, BATCH)
    ctx = BindContext(graph, BATCH, backend.target)
    verdict = gate.check(default_variant(node, ctx))
    assert not verdict.admitted and "tolerance" in verdict.reason
    assert gate.check({**default_variant(node, ctx), "algo": "direct"}).admitted
