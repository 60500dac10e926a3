"""Training pass 5 (with `global_clipnorm`): every optimizer update reads its gradient scaled by
one coefficient, so that the gradients of all trainable parameters have a global L2 norm of at
most max_norm (PyTorch's clip_grad_norm_; the ops are in cnnc/ir/clipping.py).

    clip/<p>/square_sum   sum of grad/<p> squared plus the previous parameter's running sum
    clip/coefficient      min(1, max_norm / (sqrt(last running sum) + 1e-6))
    grad/<p>/clipped      grad/<p> * clip/coefficient, what update/<p> reads

All of it runs on the device between the backward pass and the updates: no value goes to the
host, and the step stays one queue of launches. The updates' order, and so the running sum's,
is the graph's.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.graph import Graph, Node
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder

COEFFICIENT = "clip/coefficient"


def _square_sum(param: str) -> str:
    return f"clip/{param}/square_sum"


def _clipped(grad: str) -> str:
    return f"{grad}/clipped"


def _is_optimizer_update(node: Node) -> bool:
    return (node.opdef.group == "update" and len(node.inputs) > 1
            and names.is_gradient(node.inputs[1]))


def clip_gradients(graph: Graph, *, max_norm: float | None) -> Graph:
    """The graph with its optimizer updates reading clipped gradients (unchanged without
    max_norm, or without updates)."""
    updates = [n for n in graph.nodes if _is_optimizer_update(n)]
    if max_norm is None or not updates:
        return graph
    b = GraphBuilder(graph)
    first = updates[0].name
    for node in graph.nodes:
        if node.name == first:
            running: str | None = None
            for u in updates:
                param, grad = u.inputs[0], u.inputs[1]
                inputs = (grad,) if running is None else (grad, running)
                running = b.add(_square_sum(param), "square_sum", inputs, like=u)
            b.add(COEFFICIENT, "clip_coefficient", (running,), {"max_norm": max_norm})
            for u in updates:
                b.add(_clipped(u.inputs[1]), "scale_gradient", (u.inputs[1], COEFFICIENT),
                      like=u)
        if _is_optimizer_update(node):
            inputs = (node.inputs[0], _clipped(node.inputs[1]), *node.inputs[2:])
            b.keep(replace(node, inputs=inputs))
        else:
            b.keep(node)
    return b.build()
