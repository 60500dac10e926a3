"""Training pass: batch norm and its activation as one forward node, the activation's derivative
taken inside batch norm's gradient (cnnc/ir/bn_act_grad.py).

Before (after share_bn_sums.py), for a batch norm whose output v goes through an element-wise
activation:

    v  = batchnorm_train(x, stats, gamma, beta)        y = activation(v)
    g  = activation_grad(v or y, dy)                    (v for silu/gelu/..., y for relu/...)
    s  = batchnorm_grad_sums(x, stats, g)              dx = batchnorm_grad_apply(x, stats, g, s)

after:

    y  = batchnorm_train(x, stats, gamma, beta, activation)
    s  = batchnorm_act_grad_sums(x, stats, dy, gamma, beta)
    dx = batchnorm_act_grad_apply(x, stats, dy, s, gamma, beta)

Batch norm's gradient kernels recompute v from x (which they read anyway) and apply act'(v) to
dy as they load it: no activation_grad pass over memory, and, for an activation differentiated
from its input (silu, gelu, hard_swish, mish: `activations.reads_input`, which training split
off their batch norm so that v was stored), no v written and read back in the forward pass
either. fuse_batchnorm_activation (fuse_training.py) already fused the relu kind in the forward
pass; this takes their gradients too. Left alone: a g, v or y read by anything else (v by
something other than the activation and its gradient), an activation with parameters, a batch
norm whose parameters get no gradient (its gradient is one batchnorm_grad_input node, sums
inside). Runs after share_batchnorm_sums and before fuse_activation_grad, which would otherwise
fuse g into the op producing dy.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnc.ir.activations import ACTIVATIONS, parameters
from cnnc.ir.graph import Graph, Node
from cnnc.passes.graph_builder import GraphBuilder


@dataclass(frozen=True)
class _Match:
    apply: Node  # batchnorm_grad_apply
    sums: Node  # batchnorm_grad_sums
    grad: Node  # activation_grad
    bn: Node  # batchnorm_train (linear, or with the activation fused)
    act: Node | None  # the activation node after a linear bn, None when fused already


def _only_readers(graph: Graph, value: str, readers: set[str]) -> bool:
    return set(graph.consumers.get(value, ())) == readers and value not in graph.outputs


def _match(graph: Graph, apply: Node) -> _Match | None:
    if apply.op != "batchnorm_grad_apply":
        return None
    x, stats, g, s = apply.inputs[:4]
    sums, grad = graph.node_map.get(s), graph.node_map.get(g)
    if (sums is None or sums.op != "batchnorm_grad_sums" or sums.inputs != (x, stats, g)
            or grad is None or grad.op != "activation_grad" or parameters(grad.attrs)
            or not _only_readers(graph, g, {s, apply.name})):
        return None
    name = grad.attrs["activation"]
    if not ACTIVATIONS[name].elementwise or name == "linear":
        return None
    bn = graph.node_map.get(grad.inputs[0])
    if (bn is None or bn.op != "batchnorm_train" or bn.inputs[:2] != (x, stats)
            or bn.attrs["epsilon"] != apply.attrs["epsilon"]):
        return None
    if not ACTIVATIONS[name].from_input:  # g reads y: the activation is fused already
        return _Match(apply, sums, grad, bn, None) if bn.attrs["activation"] == name else None
    if bn.attrs["activation"] != "linear":
        return None
    readers = [r for r in graph.consumers.get(bn.name, ()) if r != grad.name]
    if len(readers) != 1 or not _only_readers(graph, bn.name, {grad.name, readers[0]}):
        return None
    act = graph.node(readers[0])
    if (act.op != "activation" or act.attrs["activation"] != name or parameters(act.attrs)
            or act.inputs != (bn.name,)):
        return None
    return _Match(apply, sums, grad, bn, act)


def fuse_batchnorm_act_grad(graph: Graph) -> Graph:
    matches = [m for m in (_match(graph, n) for n in graph.nodes) if m is not None]
    if not matches:
        return graph
    at: dict[str, _Match] = {}
    for m in matches:
        at.update({n.name: m for n in (m.apply, m.sums, m.grad)})
        if m.act is not None:
            at.update({m.bn.name: m, m.act.name: m})
    b = GraphBuilder(graph)
    for node in graph.nodes:
        m = at.get(node.name)
        if m is None:
            b.keep(node)
            continue
        x, stats, *affine = m.bn.inputs
        dy = m.grad.inputs[1]
        act = m.grad.attrs["activation"]
        attrs = {k: m.bn.attrs[k] for k in ("epsilon", "center", "scale")}
        if node is m.act:
            b.add(node.name, "batchnorm_train", m.bn.inputs,
                  m.bn.attrs.replace(activation=act), like=m.bn)
        elif node is m.sums:
            b.add(node.name, "batchnorm_act_grad_sums", (x, stats, dy, *affine),
                  {**attrs, "activation": act}, like=node)
        elif node is m.apply:
            b.add(node.name, "batchnorm_act_grad_apply", (x, stats, dy, node.inputs[3], *affine),
                  {**attrs, "activation": act}, like=node)
        # the linear bn, its activation_grad: no longer computed
    return b.build()
