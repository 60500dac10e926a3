"""FLOP counts of a graph from the op table: per node and in total (`cnnc summary`, `cnnc bench`).

Counts are per example (shapes keep their batch dimension open) and follow the op table: a
multiply-add counts two; ops without a FLOP rule (inputs, views, training-only ops) count zero.
"""

from __future__ import annotations

from cnnc.ir.graph import Graph, Node


def node_flops(graph: Graph, node: Node) -> int:
    """FLOPs per example of one node of `graph`, by its op's FLOP rule."""
    in_shapes = tuple(graph.shape_of(v) for v in node.inputs)
    return node.opdef.flops(node.attrs, in_shapes, node.shape)


def total_flops(graph: Graph) -> int:
    """FLOPs per example of one run of the whole graph: the sum over its nodes."""
    return sum(node_flops(graph, node) for node in graph.nodes)
