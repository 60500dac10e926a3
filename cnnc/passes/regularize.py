"""Training pass 3b: kernel regularizers' L2 penalties joined to the loss (after `backward`).

A conv2d or dense with kernel_regularizer=l2 adds l2 * sum(kernel^2) to the loss that training
reports, as Keras does. The data loss keeps its op under a new name (train/loss/data) and a
chain of l2_penalty nodes, one per regularized kernel, ends in train/loss. The penalty's
gradient, 2 * l2 * kernel, is not a graph node: the optimizer pass gives the kernel's update
an `l2` attribute and the update adds it to the gradient (cnnc/ir/regularizers.py). So the
pass runs only when there are updates (the gradient checks differentiate the data loss alone).
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.graph import Graph
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder


def kernel_l2(graph: Graph) -> dict[str, float]:
    """The L2 factor of each trainable kernel whose layer has a kernel_regularizer."""
    found: dict[str, float] = {}
    for node in graph.nodes:
        factor = node.attrs.get("kernel_regularizer") if "kernel_regularizer" in {
            a.name for a in node.opdef.args} else None
        if not factor:
            continue
        for param in node.params:
            spec = graph.state_map[param]
            if param.rsplit("/", 1)[-1] == "kernel" and spec.trainable:
                found[param] = factor
    return found


def add_penalties(graph: Graph) -> Graph:
    penalties = kernel_l2(graph)
    if not penalties:
        return graph
    loss = graph.node(names.LOSS)
    b = GraphBuilder(graph)
    for node in graph.nodes:
        if node is loss:
            b.add(names.DATA_LOSS, node.op, node.inputs, node.attrs, node.params, like=node)
            continue
        if names.LOSS in node.inputs:  # nothing reads the loss today; keep it so if one does
            node = replace(node, inputs=tuple(names.DATA_LOSS if v == names.LOSS else v
                                             for v in node.inputs))
        b.keep(node)
    total = names.DATA_LOSS
    for i, (param, factor) in enumerate(penalties.items()):
        last = i == len(penalties) - 1
        total = b.add(names.LOSS if last else names.penalty(param), "l2_penalty",
                      (total, param), {"l2": factor}, like=loss)
    return b.build()
