"""Training pass: an activation's gradient fused into the op that produces its dy.

activation_grad(v, dy) of an element-wise activation differentiated from its input (silu, gelu,
hard_swish, mish, ...: `activations.reads_input`, the ones training splits off their layer), where
dy is the value of a
conv2d_grad_input, depthwise_conv2d_grad_input, dense_grad_input or a two-input add (gradient
contributions summed) that nothing else reads, becomes one `<op>_act_grad` node
(cnnc/ir/act_grad_fused.py) named after the activation_grad node, so its readers keep their
input: the backends apply act'(v) as the op stores, and the backward pass makes no pass of its
own over memory per activation. Relu and the others read from y fuse only into an add (a
residual block's relu after its sum: the add and the derivative were two launches and two
passes over the block's gradient), unless that add is a squeeze-excite block's sum, which
fuse_excite_grad makes one node of; after the convolutions they are left as they were (their
derivative is cheap, and the tuner's tests pin those graphs). Runs after the backward pass (which made the nodes) and after
fuse_batchnorm_activation (which reads activation nodes, never their gradients). Left alone:
softmax (its gradient spans a row), a dy read by another node or that is a graph output, and
adds of three or more gradients or that broadcast.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.act_grad_fused import ACT_GRAD_OF
from cnnc.ir.activations import ACTIVATIONS, reads_input
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node
from cnnc.passes.fuse_excite_grad import excite_sum
from cnnc.passes.rewrite import Rewrite, apply_rules


def _fuse(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "activation_grad" or not ACTIVATIONS[node.attrs["activation"]].elementwise:
        return None
    v, dy = node.inputs
    producer = graph.node_map.get(dy)
    if (producer is None or producer.op not in ACT_GRAD_OF
            or graph.consumers.get(dy) != (node.name,) or dy in graph.outputs
            or producer.shape != node.shape):
        return None
    if not reads_input(node.attrs) and (producer.op != "add" or excite_sum(graph, producer)):
        # A squeeze-excite block's sum is left to fuse_excite_grad: its one node replaces
        # three launches over the map, the derivative read from y only one.
        return None
    if producer.op == "add" and (len(producer.inputs) != 2 or any(
            graph.shape_of(x) != producer.shape for x in producer.inputs)):
        return None
    fused = replace(producer, name=node.name, op=ACT_GRAD_OF[producer.op],
                    inputs=(*producer.inputs, v), attrs=Attrs({**producer.attrs, **node.attrs}))
    return Rewrite(at=node.name, new=(fused,), drop=(producer.name,))


RULES = {"dy producer + activation_grad -> one node applying the derivative as it stores": _fuse}


def fuse_activation_grad(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
