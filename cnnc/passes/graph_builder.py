"""A helper for passes that build a new graph node by node (graphs themselves never change).

Each added node has its attributes checked against the op table and its shape inferred, so a pass
cannot emit a node the verifier would reject without failing at the line that emitted it. Update
ops are kept after every other node: they write state that earlier nodes read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from cnnc.errors import SpecError
from cnnc.ir.graph import Graph, Node, StateSpec, infer_node
from cnnc.ir.ops import OPS, Shape


class GraphBuilder:
    def __init__(self, graph: Graph):
        self.base = graph
        self.nodes: list[Node] = []
        self.state: list[StateSpec] = list(graph.state)
        self.shapes: dict[str, Shape] = {s.name: s.shape for s in graph.state}
        self._taken: set[str] = {s.name for s in graph.state}

    def shape(self, value: str) -> Shape:
        return self.shapes[value]

    def _claim(self, name: str) -> None:
        if name in self._taken:
            layer = name.split("/")[0]
            raise SpecError(
                f"graph '{self.base.name}' needs the name '{name}' twice; rename the layer "
                f"'{layer}' (names the compiler adds start with a layer name, 'grad', 'slot', "
                "'update' or 'train')")
        self._taken.add(name)

    def keep(self, node: Node) -> str:
        """Copy a node unchanged (its shape is already known)."""
        self._claim(node.name)
        self.nodes.append(node)
        if node.shape is not None:
            self.shapes[node.name] = node.shape
        return node.name

    def add(
        self,
        name: str,
        op: str,
        inputs: Iterable[str],
        attrs: Mapping[str, Any] | None = None,
        params: Iterable[str] = (),
        *,
        like: Node | None = None,
    ) -> str:
        """A new node; `like` lends it a spec location. Returns its name."""
        checked = OPS[op].check_attrs(dict(attrs or {}))
        node = Node(name=name, op=op, inputs=tuple(inputs), attrs=checked, params=tuple(params),
                    span=like.span if like else None, path=like.path if like else None)
        shape = infer_node(node, [self.shapes[v] for v in node.inputs])
        self._claim(name)
        self.nodes.append(replace(node, shape=shape))
        if shape is not None:
            self.shapes[name] = shape
        return name

    def add_state(self, spec: StateSpec) -> str:
        self._claim(spec.name)
        self.state.append(spec)
        self.shapes[spec.name] = spec.shape
        return spec.name

    def rename(self, old: str, new: str) -> str:
        """Give a node that nothing reads yet its final name."""
        for i, node in enumerate(self.nodes):
            if node.name == old:
                self._claim(new)
                self._taken.discard(old)
                self.nodes[i] = replace(node, name=new)
                self.shapes[new] = self.shapes.pop(old)
                return new
        raise KeyError(old)

    def build(self, **changes: Any) -> Graph:
        values = [n for n in self.nodes if OPS[n.op].group != "update"]
        updates = [n for n in self.nodes if OPS[n.op].group == "update"]
        return self.base.with_nodes(values + updates, state=tuple(self.state), **changes)
