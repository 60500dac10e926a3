"""The forward pass's reduction in parts (conv2d.cl -D SPLIT, conv2d_parts_finish): offered by
the tuner where a convolution's output has few pixels (algorithms.py: _forward_forms), bound as
two launches, and every such variant computes what the NumPy reference computes (the gate: the
node's shape and its edge shapes, batch 1 and 3), with a bias and an activation, a folded batch
norm, a residual join, grouped channels and a softmax head on the parts' sums."""

from __future__ import annotations

import pytest

from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import as_layer, describe, tunable, variant_space

# A 5x3 map of 40 channels (taps x channels: 360, so parts of 2 and 4 are offered), channel
# counts no vector or part count divides (37 filters, 13 and 10 channels per group), 'same' and
# 'valid' windows, a residual join, a folded batch norm, a grouped convolution and a 1x1 head
# whose softmax runs after the parts' sums.
SPEC = """
network: tiny_split
input: [5, 3, 40]
layers:
  - {conv2d: [40, 3], padding: same, activation: relu, name: c1}
  - {conv2d: [40, 3], padding: same, use_bias: false, name: c2}
  - {batchnorm: null, name: c2_bn}
  - Add: {inputs: [c1, c2_bn]}
  - {activation: relu, name: j}
  - {conv2d: [37, 3], padding: valid, activation: tanh, inputs: [j], name: c3}
  - {conv2d: [26, 3], padding: same, groups: 2, inputs: [j], name: grouped}
  - {conv2d: [5, 3], padding: same, activation: softmax, inputs: [j], name: head}
  - {flatten: null, inputs: [c3], name: f1}
  - {flatten: null, inputs: [grouped], name: f2}
  - {flatten: null, inputs: [head], name: f3}
  - concatenate: {inputs: [f1, f2, f3]}
"""


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "tiny_split.yaml"
    path.write_text(SPEC)
    return inference_graph(load_spec(str(path)))


def _convolutions(graph):
    return [n for n in graph.nodes if tunable(n) and as_layer(n).op == "conv2d"]


def _splits(space):
    return [v for v in space if v.get("split", 1) > 1]


def _launches(backend, graph, node, variant, batch):
    backend.choose_variants = lambda g, b: {node.name: variant}
    try:
        return backend.compile(graph, batch).plan.bindings[node.name].launches
    finally:
        backend.choose_variants = lambda g, b: {}


def test_few_pixels_offer_parts_bound_as_two_launches(device, graph):
    """At batch 1 every convolution here offers 4 parts (the 5x3 map's 15 pixels, 180 to 360
    reduction steps), bound as the split GEMM and the finish that stores the node's value; at a
    batch whose pixels are many, none is offered."""
    backend = OpenCLBackend(device)
    nodes = _convolutions(graph)
    assert len(nodes) == 5, [n.name for n in nodes]
    for node in nodes:
        space = variant_space(node, BindContext(graph, 1, backend.target))
        splits = _splits(space)
        parts = {v["split"] for v in splits}
        assert parts == {4}, (node.name, parts)
        assert f"split={splits[0]['split']}" in describe(splits[0])
        launches = [lau for lau in _launches(backend, graph, node, splits[0], 1)
                    if lau.kernel != "batchnorm_fold"]  # j's folded batch norm, once a run
        kernels = [lau.kernel for lau in launches]
        assert kernels[:2] == ["conv2d_forward", "conv2d_parts_finish"], (node.name, kernels)
        assert launches[0].global_size[2] == splits[0]["split"]
        assert launches[0].define_map["SPLIT"] == splits[0]["split"]
        # the finish stores the node's value (the head: the logits its softmax reads) and adds
        # j's residual; the parts go to a workspace
        stores = any(getattr(a, "name", None) == node.name for a in launches[1].args)
        assert stores == (node.name != "head"), (node.name, launches[1].args)
        assert node.name != "head" or launches[2].kernel.startswith("softmax")
        assert ("HAS_RESIDUAL" in launches[1].define_map) == (node.name == "j")
        many = variant_space(node, BindContext(graph, 128, backend.target))
        assert _splits(many) == [], node.name


@pytest.mark.parametrize("batch", [1, pytest.param(3, marks=pytest.mark.slow)])
def test_parts_match_the_reference(device, graph, batch):
    """Every split variant of every convolution, and 2 and 3 parts with the default block, on
    its shape and the edge shapes (a split above an edge shape's channels runs one part per
    channel)."""
    backend = OpenCLBackend(device)
    failures = []
    checked = 0
    for node in _convolutions(graph):
        gate = Gate(backend, graph, node, batch)
        splits = _splits(variant_space(node, BindContext(graph, 1, backend.target)))
        for variant in [*splits, *({**splits[0], "split": p} for p in (2, 3))]:
            checked += 1
            verdict = gate.check(variant)
            if not verdict.admitted:
                failures.append(f"{node.name} {describe(variant)}: {verdict.reason}")
    assert checked >= 15  # each node's offered variants, and 2 and 3 parts
    assert failures == []
