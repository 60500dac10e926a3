"""Training pass 4: one optimizer update per trainable parameter, with its slots as state.

Slots are StateSpec(role='slot', init='zeros'): SGD with momentum keeps `slot/<p>/velocity`
(none without momentum, as Keras); Adam and Nadam keep `slot/<p>/m` and `slot/<p>/v`.
The update op `update/<p>` reads `grad/<p>` and takes the optimizer's arguments as attributes;
per-step scalars (bias corrections, the learning-rate override) come from OpDef.scalars at run
time. A trainable parameter that the loss does not depend on gets no update.

Decoupled weight decay (`weight_decay`) reaches kernels only: biases and normalisation
parameters (batch/layer norm gamma and beta) get an update with weight_decay 0, as most modern
recipes have it (timm, the AdamW paper's follow-ups), unless `decay_bias_and_norm` is true.
A kernel with a kernel_regularizer gets `l2` (cnnc/passes/regularize.py).
"""

from __future__ import annotations

from cnnc.ir.graph import Graph, StateSpec
from cnnc.ir.ops import OPS
from cnnc.ir.optimizer_options import update_args
from cnnc.ir.train_config import OptimizerConfig
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder
from cnnc.passes.regularize import kernel_l2


def slot_kinds(optimizer: OptimizerConfig) -> tuple[str, ...]:
    if optimizer.name == "sgd":
        return ("velocity",) if optimizer.args["momentum"] > 0 else ()
    return ("m", "v")


# Keras' names of a layer's bias and of a normalisation layer's scale and offset.
UNDECAYED_NAMES = ("bias", "gamma", "beta")


def decay_excluded(graph: Graph, param: str) -> bool:
    """Whether decoupled weight decay leaves `param` alone by default: a bias, or a parameter
    of a normalisation layer (by its kind in the op table, or by name where a training pass
    has already rewritten the layer)."""
    if param.rsplit("/", 1)[-1] in UNDECAYED_NAMES:
        return True
    return any(OPS[n.op].kind == "normalization" for n in graph.nodes if param in n.params)


def optimizer_updates(graph: Graph, *, optimizer: OptimizerConfig) -> Graph:
    b = GraphBuilder(graph)
    for node in graph.nodes:
        b.keep(node)
    op = f"{optimizer.name}_update"
    args = update_args(optimizer.args)  # without global_clipnorm and the like
    l2 = kernel_l2(graph)
    for spec in graph.state:
        grad = names.grad(spec.name)
        if spec.role != "param" or not spec.trainable or grad not in graph.node_map:
            continue
        slots = [b.add_state(StateSpec(names.slot(spec.name, kind), spec.shape, "zeros",
                                       trainable=False, role="slot"))
                 for kind in slot_kinds(optimizer)]
        attrs = args
        if args.get("weight_decay") and not args.get("decay_bias_and_norm") \
                and decay_excluded(graph, spec.name):
            attrs = {**args, "weight_decay": 0.0}
        if spec.name in l2:  # the kernel regularizer's gradient, added in the update
            attrs = {**attrs, "l2": l2[spec.name]}
        b.add(names.update(spec.name), op, (spec.name, grad, *slots), attrs)
    return b.build()
