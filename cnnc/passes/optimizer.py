"""Training pass 4: one optimizer update per trainable parameter, with its slots as state.

Slots are StateSpec(role='slot', init='zeros'): SGD with momentum keeps `slot/<p>/velocity`
(none without momentum, as Keras); Adam and Nadam keep `slot/<p>/m` and `slot/<p>/v`.
The update op `update/<p>` reads `grad/<p>` and takes the optimizer's arguments as attributes;
per-step scalars (bias corrections, the learning-rate override) come from OpDef.scalars at run
time. A trainable parameter that the loss does not depend on gets no update.
"""

from __future__ import annotations

from cnnc.ir.graph import Graph, StateSpec
from cnnc.ir.optimizer_options import update_args
from cnnc.ir.train_config import OptimizerConfig
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder


def slot_kinds(optimizer: OptimizerConfig) -> tuple[str, ...]:
    if optimizer.name == "sgd":
        return ("velocity",) if optimizer.args["momentum"] > 0 else ()
    return ("m", "v")


def optimizer_updates(graph: Graph, *, optimizer: OptimizerConfig) -> Graph:
    b = GraphBuilder(graph)
    for node in graph.nodes:
        b.keep(node)
    op = f"{optimizer.name}_update"
    for spec in graph.state:
        grad = names.grad(spec.name)
        if spec.role != "param" or not spec.trainable or grad not in graph.node_map:
            continue
        slots = [b.add_state(StateSpec(names.slot(spec.name, kind), spec.shape, "zeros",
                                       trainable=False, role="slot"))
                 for kind in slot_kinds(optimizer)]
        b.add(names.update(spec.name), op, (spec.name, grad, *slots),
              update_args(optimizer.args))  # without global_clipnorm and the like
    return b.build()
