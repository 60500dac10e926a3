"""The pictures read each layer's kind from the op table (cnnc/ir/ops.py LAYER_KINDS), and their
tables by kind cover every kind: whether its feature maps are drawn (cnnc/viz/maps.py MAP_KINDS)
and how the graph diagram colours it (cnnc/viz/graph_dot.py FILL). A new kind without an entry
fails here, not silently in a picture; a new layer op without a kind cannot register."""

from __future__ import annotations

import re

import pytest

from cnnc.ir.ops import LAYER_KINDS, OPS, OpDef, layer_of, node_op_names, register
from cnnc.passes.pipeline import inference_graph
from cnnc.viz.graph_dot import DEFAULT_FILL, FILL, fill_of, to_dot
from cnnc.viz.maps import MAP_KINDS, draws_maps, map_layers

# The colours before the table went by kind: the diagrams stay as they were.
COLOURS = {"input": "#e0e0e0", "conv2d": "#cfe2f3", "depthwise_conv2d": "#cfe2f3",
           "maxpool2d": "#d9ead3", "avgpool2d": "#d9ead3", "global_avgpool2d": "#d9ead3",
           "dense": "#fce5cd", "add": "#fff2cc", "concatenate": "#fff2cc",
           # later merges take the merging kind's colour
           **dict.fromkeys(("multiply", "subtract", "maximum", "minimum", "average"), "#fff2cc"),
           "conv2d_transpose": "#cfe2f3", "separable_conv2d": "#cfe2f3",
           "global_maxpool2d": "#d9ead3"}


def test_maps_table_covers_every_kind():
    assert set(MAP_KINDS) == set(LAYER_KINDS)
    assert all(isinstance(v, bool) for v in MAP_KINDS.values())


def test_fill_table_covers_every_kind():
    assert set(FILL) == set(LAYER_KINDS)
    assert all(re.fullmatch("#[0-9a-f]{6}", v) for v in FILL.values())


def test_every_layer_op_has_a_kind_and_no_other_op_has_one():
    for op in OPS.values():
        assert (op.kind in LAYER_KINDS) if op.group == "layer" else op.kind is None, op.name
    with pytest.raises(ValueError, match="has a kind from LAYER_KINDS"):
        register(OpDef(name="no_kind", group="layer", args=(), arity=(1, 1),
                       infer=lambda attrs, shapes: shapes[0]))
    assert "no_kind" not in OPS


def test_the_diagram_keeps_its_colours():
    from cnnc.ir.args import Attrs
    from cnnc.ir.graph import Node

    for name in node_op_names():
        node = Node("n", name, attrs=Attrs())
        assert fill_of(node) == COLOURS.get(name, DEFAULT_FILL), name


def test_a_fused_op_draws_its_maps_as_the_layer_it_stands_for():
    for name, op in OPS.items():
        if op.group == "fused" and OPS[layer_of(name)].group == "layer":
            assert draws_maps(name) == MAP_KINDS[OPS[layer_of(name)].kind], name
        elif op.group != "layer":
            assert not draws_maps(name), name  # never in an inference graph
    drawn = {n for n in OPS if n in node_op_names() and draws_maps(n)}
    assert drawn == {"conv2d", "depthwise_conv2d", "maxpool2d", "avgpool2d", "conv2d_bn",
                     "depthwise_conv2d_bn", "conv2d_add", "conv2d_bn_add", "conv2d_transpose",
                     "separable_conv2d",
                     # a depthwise and a 1x1 convolution as one launch, drawn as the separable
                     # convolution it computes (cnnc/ir/depthwise_pointwise.py)
                     "depthwise_pointwise",
                     # a 1x1 expansion and a depthwise convolution as one launch, drawn as a
                     # separable convolution too (cnnc/ir/pointwise_depthwise.py)
                     "pointwise_depthwise",
                     # a squeeze-excite scale folded in (cnnc/ir/gated.py)
                     "conv2d_gated", "conv2d_bn_gated", "conv2d_add_gated", "conv2d_bn_add_gated",
                     # a 1x1 convolution reading ShuffleNet's gathers in place
                     # (cnnc/ir/gathered.py)
                     "conv2d_gathered", "conv2d_bn_gathered",
                     # a convolution and its pooling, drawn as the pooling (the maps come from
                     # a graph without that fusion: viz/maps.py maps_graph)
                     "conv2d_maxpool", "conv2d_avgpool",
                     # a convolution reading a concatenation in place, drawn as the convolution
                     # (the maps come from a graph without that fusion: viz/maps.py maps_graph)
                     "conv2d_concat",
                     # a max pooling reading a concatenation in place, drawn as the pooling
                     "maxpool2d_concat"}


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
            want = FILL[node.opdef.kind] if node.opdef.group == "layer" else DEFAULT_FILL
            assert re.search(rf'"{re.escape(node.name)}" \[label=.*fillcolor="{want}"\];', dot)
