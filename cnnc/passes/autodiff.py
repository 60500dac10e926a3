"""Training pass 3: reverse-mode differentiation, from the loss back to every parameter.

Walks the graph backwards from `train/loss` and asks each node's vector-Jacobian rule
(cnnc/passes/vjp_rules.py) for its operands' gradient contributions. A value read by several
nodes gets one contribution from each, `grad/<v>/<k>`, summed by an `add` into `grad/<v>`;
with a single contribution the node is named `grad/<v>` directly. Gradients are formed only for
values between a trainable parameter (or, with wrt_inputs, a graph input) and the loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cnnc.ir.graph import Graph, Node, VerifyError
from cnnc.ir.ops import Shape
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder
from cnnc.passes.vjp_rules import VJP_RULES


class _Context:
    """What a rule may do: read shapes, emit nodes, emit contributions to an operand."""

    def __init__(self, builder: GraphBuilder):
        self.b = builder
        self.pending: dict[str, list[str]] = {}
        self.created: set[str] = set()  # contribution nodes not yet summed or renamed
        self.counts: dict[str, int] = {}

    def shape(self, value: str) -> Shape:
        return self.b.shape(value)

    def add(self, name: str, op: str, inputs: Sequence[str],
            attrs: Mapping[str, Any] | None = None, *, like: Node,
            params: Sequence[str] = ()) -> str:
        return self.b.add(name, op, inputs, attrs, params, like=like)

    def part(self, operand: str, op: str, inputs: Sequence[str],
             attrs: Mapping[str, Any] | None = None, *, like: Node) -> str:
        k = self.counts.get(operand, 0)
        self.counts[operand] = k + 1
        name = self.b.add(names.grad_part(operand, k), op, inputs, attrs, like=like)
        self.created.add(name)
        return name

    def contribute(self, operand: str, grad: str) -> None:
        self.pending.setdefault(operand, []).append(grad)

    def finalize(self, value: str, like: Node | None) -> str | None:
        """Sum the contributions to `value` into `grad/<value>`; None if it has none."""
        parts = self.pending.pop(value, None)
        if not parts:
            return None
        target = names.grad(value)
        if len(parts) > 1:
            self.created.difference_update(parts)
            return self.b.add(target, "add", parts, like=like)
        (part,) = parts
        if part in self.created:
            self.created.discard(part)
            return self.b.rename(part, target)
        # A gradient passed through unchanged (add): still give it its documented name.
        return self.b.add(target, "view", (part,), {"shape": self.b.shape(part)[1:]},
                          like=like)


def _requires_grad(graph: Graph, wrt_inputs: bool) -> set[str]:
    """Values that depend on a trainable parameter (or on a graph input, with wrt_inputs)."""
    trainable = {s.name for s in graph.state if s.trainable}
    out = set(trainable)
    for node in graph.nodes:
        if node.op == "input":
            if wrt_inputs and node.name != names.TARGET:
                out.add(node.name)
        elif any(v in out for v in node.operands):
            out.add(node.name)
    return out


def _reaches(graph: Graph, root: str) -> set[str]:
    """Values the root is computed from (its ancestors), and the root itself."""
    out = {root}
    for node in reversed(graph.nodes):
        if node.name in out:
            out.update(node.operands)
    return out


def backward(graph: Graph, *, wrt_inputs: bool = False) -> Graph:
    if names.LOSS not in graph.node_map:
        raise VerifyError(f"backward needs a '{names.LOSS}' node: run attach_loss first")
    requires = _requires_grad(graph, wrt_inputs)
    reaches = _reaches(graph, names.LOSS)
    b = GraphBuilder(graph)
    for node in graph.nodes:
        b.keep(node)
    cx = _Context(b)
    for node in reversed(graph.nodes):
        if node.name == names.LOSS:
            dy = None
        elif node.name in cx.pending:
            dy = cx.finalize(node.name, node)
        else:
            continue
        if node.op == "input":
            continue
        rule = VJP_RULES.get(node.op)
        if rule is None:
            raise node.located(VerifyError(f"no gradient rule for op '{node.op}'"))
        needs = [v in requires and v in reaches for v in node.operands]
        if not any(needs):
            continue
        grads = rule(cx, node, dy, needs)
        for operand, grad in zip(node.operands, grads, strict=False):
            if grad is not None:
                cx.contribute(operand, grad)
    for spec in graph.state:
        cx.finalize(spec.name, None)
    leftover = sorted(cx.pending)
    if leftover:
        raise VerifyError(f"gradients for {', '.join(leftover)} were never summed")
    return b.build()
