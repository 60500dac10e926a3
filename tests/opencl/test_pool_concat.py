"""maxpool2d_concat on the device (bind_pool_concat.py): pool.cl's maxpool2d reading a channel
concatenation's 2 to 4 parts where they lie (-D PARTS), against the NumPy reference
(cnnc/crosscheck.py's tolerance): parts whose channels every vector width divides and parts
that narrow the vectors to 1 channel, 2x2 stride-2 and 3x3 stride-1 'same' and 3x3 stride-2
'valid' windows on odd and even maps, batch 1 and 5, the device's tiling and a GPU's; the
Inception example spec."""

from __future__ import annotations

import pytest
from test_conv_maxpool import _target

import cnnc
from cnnc.crosscheck import OUTPUT_TOLERANCE, cross_check
from cnnc.passes.pipeline import inference_graph

# (the map's H, W; each part's channels; the pooling's window, strides, padding)
MAPS = [
    ((14, 14), (16, 24, 16), (2, 2, "valid")),  # inception_mini's block
    ((7, 9), (8, 8), (3, 1, "same")),  # odd map, windows overlapping the edges
    ((9, 8), (3, 5, 4, 2), (3, 2, "valid")),  # four parts, 1-channel vectors
    ((6, 6), (4, 12, 32), (2, 1, "same")),  # padding after the map only
]


def net_spec(hw, channels, pool, activation="relu"):
    """in -> a 3x3 'same' convolution per part -> their concatenation -> `pool` max pooling
    `m` -> a 1x1 convolution (so that the pooled map is not the output)."""
    size, strides, padding = pool
    layers = [{"conv2d": [c, 3], "padding": "same", "activation": activation, "name": f"p{i}",
               "inputs": ["in"]} for i, c in enumerate(channels)]
    layers += [{"concatenate": None, "inputs": [f"p{i}" for i in range(len(channels))],
                "name": "cat"},
               {"maxpool2d": size, "strides": strides, "padding": padding, "name": "m"},
               {"conv2d": [4, 1], "name": "out"}]
    return {"network": "cat_pool", "input": {"name": "in", "shape": [*hw, 3]}, "layers": layers}


def _check(graph, batch, device, target=None):
    report = cross_check(graph, batch, device=device.index, seed=3, target=target)
    bad = [c for c in report.checks if c.local_rel > c.tolerance
           or c.judged_e2e and c.e2e_rel > OUTPUT_TOLERANCE]
    assert not bad, "; ".join(f"{c.node} ({c.op}, {c.kernels}): alone {c.local_rel:.2e} > "
                              f"{c.tolerance:.1e} or run {c.e2e_rel:.2e}" for c in bad)
    return {c.node: c.kernels for c in report.checks}


@pytest.mark.parametrize("batch, tiling", [(1, "native"), (5, "native"), (5, "gpu-tiling")])
@pytest.mark.parametrize("index", range(len(MAPS)))
def test_the_pooling_reads_the_parts_in_place(index, batch, tiling, device):
    graph = inference_graph(cnnc.load_spec(net_spec(*MAPS[index])))
    node = graph.node("m")
    assert node.op == "maxpool2d_concat" and len(node.inputs) == len(MAPS[index][1])
    assert "cat" not in graph.node_map
    kernels = _check(graph, batch, device, _target(tiling, device))
    assert kernels["m"] == "pool.cl:maxpool2d", kernels["m"]


def test_the_inception_example_spec(device):
    """inception_mini's three branches are pooled where they lie: one launch fewer, the same
    outputs."""
    graph = inference_graph(cnnc.load_spec("inception_mini"))
    fused = [n for n in graph.nodes if n.op == "maxpool2d_concat"]
    assert [n.inputs for n in fused] == [("b1", "b2", "b3")]
    assert not [n for n in graph.nodes if n.op == "concatenate"]
    kernels = _check(graph, 2, device)
    assert not any("concat_rows" in k for k in kernels.values()), kernels
