"""Data-parallel pass: the training graph as two phases, gradients then optimizer updates.

Between the phases every rank's gradients are summed (an all-reduce, on the host for now), so
the optimizer runs on the global batch's gradient, the same on every rank:

    gradient:  forward, loss, backward, moving averages   outputs (loss, prediction, grad/<p>...)
    update:    one optimizer update per parameter         reads grad/<p> as state tensors

In the update phase the gradients are state tensors (role 'gradient') that the host writes
before the run: they have no batch dimension and no node computes them there. Moving-average
updates stay in the gradient phase, next to the batch statistics they read.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnc.errors import InternalError, SpecError
from cnnc.ir.graph import Graph, Node, StateSpec, verify
from cnnc.passes import names

GRADIENT_ROLE = "gradient"


@dataclass(frozen=True)
class Phases:
    gradient: Graph
    update: Graph
    grads: tuple[str, ...]  # the gradient phase's outputs that the update phase reads, in order

    @property
    def grad_state(self) -> tuple[StateSpec, ...]:
        """The update phase's inputs, as the state tensors the host writes."""
        return tuple(s for s in self.update.state if s.role == GRADIENT_ROLE)


def _is_optimizer_update(node: Node) -> bool:
    return node.opdef.group == "update" and any(names.is_gradient(v) for v in node.inputs)


def _used_state(graph: Graph, nodes: list[Node]) -> tuple[StateSpec, ...]:
    used = {v for n in nodes for v in n.operands}
    return tuple(s for s in graph.state if s.name in used)


def split_phases(graph: Graph) -> Phases:
    """A training graph (with optimizer updates) as its gradient and update phases."""
    updates = [n for n in graph.nodes if _is_optimizer_update(n)]
    if not updates:
        raise InternalError(f"graph '{graph.name}' has no optimizer update to split off")
    if any(n.op == "ema_update" for n in graph.nodes):
        raise SpecError("use_ema is not supported in data-parallel runs yet",
                        hint="train on one process (no --ranks/mpirun), or drop the option")
    if any(n.op == "clip_coefficient" for n in graph.nodes):
        # the norm must be of the averaged gradients, which exist only after the exchange
        raise SpecError("global_clipnorm is not supported in data-parallel runs yet: each rank "
                        "would clip its own gradients before they are averaged",
                        hint="train on one process (no --ranks/mpirun), or drop the option")
    rest = [n for n in graph.nodes if not _is_optimizer_update(n)]
    grads: list[str] = []
    for node in updates:
        grads += [v for v in node.inputs if names.is_gradient(v) and v not in grads]
    gradient = graph.with_nodes(rest, outputs=(*graph.outputs, *grads),
                                state=_used_state(graph, rest))
    grad_state = tuple(StateSpec(g, tuple(graph.shape_of(g)), "zeros", role=GRADIENT_ROLE)
                       for g in grads)
    update = graph.with_nodes(updates, outputs=(),
                              state=_used_state(graph, updates) + grad_state)
    verify(gradient, after="split_phases")
    verify(update, after="split_phases")
    return Phases(gradient, update, tuple(grads))
