"""cnnc/ir/printer.py: one readable line per node, for any graph."""

from __future__ import annotations

from dataclasses import replace

from cnnc.frontend.dsl import load_dsl
from cnnc.ir.printer import format_graph, format_node, format_shape, format_value


def test_shapes_and_values():
    assert format_shape((None, 28, 28, 1)) == "(None, 28, 28, 1)"
    assert format_shape((None,)) == "(None,)"
    assert format_shape(None) == "-"
    assert format_value((3, 3)) == "3x3"
    assert format_value(True) == "true"
    assert format_value(1e-3) == "0.001"


def test_a_graph_dump():
    graph = load_dsl("network g\ninput 4x4x1\nc: conv2d 2 3 relu same\nflatten\nd: dense 3",
                     file="g.cnn")
    expected = """\
graph g: 119 parameters
  input_layer  (None, 4, 4, 1)  = input() shape=4x4x1
  c            (None, 4, 4, 2)  = conv2d(input_layer; c/kernel, c/bias) filters=2 kernel_size=3x3 \
padding=same activation=relu
  flatten      (None, 32)       = flatten(c)
  d            (None, 3)        = dense(flatten; d/kernel, d/bias) units=3
outputs: d"""
    assert format_graph(graph) == expected


def test_defaults_locations_and_state():
    graph = load_dsl("input 4\nd: dense 3", file="g.cnn")
    line = format_node(graph.node("d"), defaults=True, location=True)
    assert line.endswith("units=3 activation=linear use_bias=true kernel_regularizer=0.0"
                         "  # g.cnn:2:4")
    text = format_graph(graph, state=True)
    assert text.splitlines()[-2:] == ["  d/kernel  (4, 3)  glorot_uniform trainable",
                                      "  d/bias  (3,)  zeros trainable"]


def test_nodes_without_a_value_or_known_op_still_print():
    graph = load_dsl("input 4\nd: dense 3")
    update = replace(graph.node("d"), name="u", shape=None)
    assert format_node(update).startswith("u  -  = dense(input_layer; d/kernel, d/bias)")
