"""Training pass 6 (with `use_ema`): a moving average of each trainable parameter, updated
after that parameter's optimizer step (cnnc/ir/ema.py).

    slot/<p>/ema              the average, an optimizer slot (zeros: step 0 overwrites it)
    update/slot/<p>/ema       ema_update(slot/<p>/ema, <p>), after update/<p> in graph order,
                              so it reads the parameter as the step left it
"""

from __future__ import annotations

from cnnc.ir.ema import EMA_SLOT
from cnnc.ir.graph import Graph, Node, StateSpec
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder


def _is_optimizer_update(node: Node) -> bool:
    return (node.opdef.group == "update" and len(node.inputs) > 1
            and names.is_gradient(node.inputs[1]))


def ema_slot(param: str) -> str:
    return names.slot(param, EMA_SLOT)


def average_weights(graph: Graph, *, momentum: float | None) -> Graph:
    """The graph with a moving-average update after each optimizer update (unchanged with
    momentum None: use_ema off)."""
    if momentum is None:
        return graph
    b = GraphBuilder(graph)
    for node in graph.nodes:
        b.keep(node)
    for node in graph.nodes:
        if not _is_optimizer_update(node):
            continue
        param = node.inputs[0]
        shadow = b.add_state(StateSpec(ema_slot(param), graph.state_map[param].shape, "zeros",
                                       trainable=False, role="slot"))
        b.add(names.update(shadow), "ema_update", (shadow, param), {"momentum": momentum},
              like=node)
    return b.build()
