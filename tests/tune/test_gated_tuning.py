"""The tuner on gated convolutions (cnnc/ir/gated.py): only the direct algorithm's variants
(the one that scales the input as it loads it, bind_gated.py), and the correctness gate checks
them on the real shape and on edge shapes, each with a gate of its own (cnnc/tune/gate.py)."""

from __future__ import annotations

import cnnc
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.gate import Gate, cases
from cnnc.tune.space import tunable, variant_space

SPEC = {
    "network": "se", "input": [6, 6, 8],
    "layers": [
        {"conv2d": [8, 1], "activation": "relu", "name": "x"},
        {"global_avgpool2d": None, "keepdims": True},
        {"conv2d": [8, 1], "activation": "sigmoid", "name": "g"},
        {"multiply": None, "inputs": ["x", "g"]},
        {"conv2d": [8, 3], "padding": "same", "use_bias": False},
        {"batchnorm": None, "name": "bn"},
        {"add": None, "inputs": ["x", "bn"], "name": "out"},
    ],
}


def _gated():
    graph = inference_graph(cnnc.load_spec(SPEC))
    node = graph.node("out")
    assert node.op == "conv2d_bn_add_gated" and tunable(node)
    return graph, node


def test_only_direct_variants_are_offered():
    graph, node = _gated()
    space = variant_space(node, BindContext(graph, 4))
    assert len(space) > 1 and all(v["algo"] == "direct" for v in space)


def test_the_gate_admits_the_direct_variants_on_every_edge_shape(device):
    graph, node = _gated()
    labels = [c.label for c in cases(graph, node, 4)]
    assert labels[0] == "real shape" and len(labels) > 1
    gate = Gate(OpenCLBackend(device), graph, node, 4)
    for variant in variant_space(node, BindContext(graph, 4))[:3]:
        verdict = gate.check(variant)
        assert verdict.admitted, verdict.reason
