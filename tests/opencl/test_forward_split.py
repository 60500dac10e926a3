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
# 'valid' windows, a residual join, a folded batch norm, a grouped convolution, a 1x1 head
# whose softmax runs after the parts' sums, and a 3x3 one of 232 channels (2,088 reduction
# steps: in parts by default on a CPU at batch 1, the others offered parts).
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
  - {conv2d: [232, 1], inputs: [j], name: wide}
  - {conv2d: [16, 3], padding: same, activation: relu, inputs: [wide], name: long}
  - {flatten: null, inputs: [c3], name: f1}
  - {flatten: null, inputs: [grouped], name: f2}
  - {flatten: null, inputs: [head], name: f3}
  - {flatten: null, inputs: [long], name: f4}
  - concatenate: {inputs: [f1, f2, f3, f4]}
"""


@pytest.fixture(scope="module")
def graph():
    return inference_graph(load_spec(SPEC, name="tiny_split"))


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


def _split_of(launches):
    return launches[0].define_map.get("SPLIT", 1) if launches else 0


def test_few_pixels_run_in_parts_bound_as_two_launches(device, graph):
    """At batch 1 (the 5x3 map's 15 pixels, up to SPLIT_DEFAULT_ROWS) the tuner offers every
    convolution here 4 parts (180 to 360 reduction steps), bound as the split GEMM and the
    finish that stores the node's value; on a CPU the one of 2,088 steps (SPLIT_DEFAULT_DEPTH
    per part) runs in 4 parts by default and is offered one part instead. At batch 128, no
    parts either way. A GPU's parts go without its local tiles."""
    backend = OpenCLBackend(device)
    cpu = backend.target.kind == "cpu"
    nodes = _convolutions(graph)
    assert [n.name for n in nodes] == ["c1", "j", "c3", "grouped", "head", "wide", "long"]
    # wide: a 1x1 convolution of 40 reduction steps, too few for parts of SPLIT_MIN_DEPTH
    wide = variant_space(nodes[5], BindContext(graph, 1, backend.target))
    assert [v for v in wide if "split" in v] == []
    for node in nodes[:5] + nodes[6:]:
        long = cpu and node.name == "long"
        ctx = BindContext(graph, 1, backend.target)
        space = variant_space(node, ctx)
        forms = [v for v in space if "split" in v]
        default = [lau for lau in _launches(backend, graph, node, space[0], 1)
                   if lau.kernel != "batchnorm_fold"]  # j's folded batch norm, once a run
        assert _split_of(default) == (4 if long else 1), node.name
        assert {v["split"] for v in forms} == ({1} if long else {4}), (node.name, forms)
        parts = default if long else [lau for lau in _launches(backend, graph, node, forms[0], 1)
                                      if lau.kernel != "batchnorm_fold"]
        kernels = [lau.kernel for lau in parts]
        assert kernels[:2] == ["conv2d_forward", "conv2d_parts_finish"], (node.name, kernels)
        assert parts[0].global_size[2] == 4
        assert "local" not in forms[0] or forms[0]["local"] == 0
        # the finish stores the node's value (the head: the logits its softmax reads) and adds
        # j's residual; the parts go to a workspace
        stores = any(getattr(a, "name", None) == node.name for a in parts[1].args)
        assert stores == (node.name != "head"), (node.name, parts[1].args)
        assert node.name != "head" or parts[2].kernel.startswith("softmax")
        assert ("HAS_RESIDUAL" in parts[1].define_map) == (node.name == "j")
        if long:
            one = _launches(backend, graph, node, forms[0], 1)
            assert "conv2d_parts_finish" not in {lau.kernel for lau in one}
            assert "split=1" in describe(forms[0])
        many = variant_space(node, BindContext(graph, 128, backend.target))
        assert [v for v in many if "split" in v] == [], node.name
        assert _split_of(_launches(backend, graph, node, many[0], 128)
                         [int(node.name == "j"):]) == 1, node.name


@pytest.mark.parametrize("batch", [1, pytest.param(3, marks=pytest.mark.slow)])
def test_parts_match_the_reference(device, graph, batch):
    """The default (4 parts at batch 1 on a CPU), one part, and 2, 3 and 4 parts with the
    default block, on its shape and the edge shapes (a split above an edge shape's channels
    runs one part per channel)."""
    backend = OpenCLBackend(device)
    failures = []
    checked = 0
    for node in _convolutions(graph):
        gate = Gate(backend, graph, node, batch)
        default = variant_space(node, BindContext(graph, batch, backend.target))[0]
        no_local = {"local": 0} if backend.target.local_tiling else {}
        for variant in [default, *({**default, "split": p, **no_local} for p in (1, 2, 3, 4))]:
            checked += 1
            verdict = gate.check(variant)
            if not verdict.admitted:
                failures.append(f"{node.name} {describe(variant)}: {verdict.reason}")
    assert checked == 35
    assert failures == []
