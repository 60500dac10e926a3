"""Rewrite rules: a pattern on one node and its replacement, applied until nothing matches.

A rule looks at a node (and the graph around it) and returns a `Rewrite` or None. A rewrite
replaces the matched node by zero or more nodes at its position, drops other nodes, and renames
values for every reader and output (so a removed node's readers read its replacement).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from cnnc.errors import InternalError
from cnnc.ir.graph import Graph, Node


@dataclass(frozen=True)
class Rewrite:
    at: str
    new: tuple[Node, ...] = ()
    drop: tuple[str, ...] = ()
    redirect: Mapping[str, str] = field(default_factory=dict)

    def apply(self, graph: Graph) -> Graph:
        def rename(v: str) -> str:
            return self.redirect.get(v, v)

        nodes = []
        for node in graph.nodes:
            if node.name in self.drop:
                continue
            for n in (self.new if node.name == self.at else (node,)):
                inputs = tuple(rename(v) for v in n.inputs)
                nodes.append(n if inputs == n.inputs else replace(n, inputs=inputs))
        outputs = tuple(rename(o) for o in graph.outputs)
        return graph.with_nodes(nodes, outputs=outputs)


Rule = Callable[[Graph, Node], "Rewrite | None"]


def apply_rules(graph: Graph, rules: Mapping[str, Rule], limit: int = 10_000) -> Graph:
    """Apply the first matching rule at the first matching node, repeatedly, to a fixpoint."""
    for _ in range(limit):
        for node in graph.nodes:
            match = next((r for r in (rule(graph, node) for rule in rules.values()) if r), None)
            if match is not None:
                graph = match.apply(graph)
                break
        else:
            return graph
    raise InternalError(f"rewrite rules did not reach a fixpoint in {limit} steps")
