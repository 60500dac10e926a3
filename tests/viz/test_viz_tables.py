"""The pictures' per-op tables cover the op table: every layer op says whether its feature maps
are drawn (cnnc/viz/maps.py MAP_OPS) and how the graph diagram colours it (cnnc/viz/graph_dot.py
FILL). A new layer op without an entry fails here, not silently in a picture."""

from __future__ import annotations

import re

from cnnc.ir.ops import OPS, layer_of, node_op_names
from cnnc.passes.pipeline import inference_graph
from cnnc.viz.graph_dot import DEFAULT_FILL, FILL, to_dot
from cnnc.viz.maps import MAP_OPS, draws_maps, map_layers

LAYERS = set(node_op_names("layer"))


def test_maps_table_covers_every_layer_op():
    assert set(MAP_OPS) == LAYERS
    assert all(isinstance(v, bool) for v in MAP_OPS.values())


def test_fill_table_covers_every_layer_op():
    assert set(FILL) == LAYERS
    assert all(re.fullmatch("#[0-9a-f]{6}", v) for v in FILL.values())


def test_a_fused_op_draws_its_maps_as_the_layer_it_stands_for():
    for name, op in OPS.items():
        if op.group == "fused" and OPS[layer_of(name)].group == "layer":
            assert draws_maps(name) == MAP_OPS[layer_of(name)], name
        elif op.group != "layer":
            assert not draws_maps(name), name  # never in an inference graph
    drawn = {n for n in OPS if n in node_op_names() and draws_maps(n)}
    assert drawn == {"conv2d", "depthwise_conv2d", "maxpool2d", "avgpool2d", "conv2d_bn",
                     "depthwise_conv2d_bn", "conv2d_add", "conv2d_bn_add"}


def test_maps_of_an_inference_graph_with_folded_and_residual_layers():
    import cnnc

    graph = inference_graph(cnnc.load_spec("resnet_mini"))
    drawn = map_layers(graph)
    assert {n.op for n in drawn} >= {"conv2d_bn", "conv2d_bn_add"}
    assert all(len(n.shape) == 4 and draws_maps(n.op) for n in drawn)


def test_the_diagram_colours_each_layer_from_the_table_and_other_ops_plainly():
    import cnnc

    spec = cnnc.load_spec("resnet_mini")
    for graph in (spec, inference_graph(spec)):
        dot = to_dot(graph)
        for node in graph.nodes:
            want = FILL[node.op] if node.opdef.group == "layer" else DEFAULT_FILL
            assert re.search(rf'"{re.escape(node.name)}" \[label=.*fillcolor="{want}"\];', dot)
