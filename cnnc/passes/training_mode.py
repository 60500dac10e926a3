"""Training pass 1: the forward graph as it runs in training (dropout masks, batch statistics).

- dropout -> dropout_train, with the layer's seed or one derived from the training seed and the
  layer name (cnnc.rng.derive_seed), so adding a layer never changes another layer's masks;
- batchnorm -> batchnorm_stats + batchnorm_train (batch statistics), plus one
  moving_average_update per moving statistic.
- a layer carrying an activation whose gradient reads its input (a conv2d with silu, gelu, ...:
  `activations.reads_input`) -> the layer, linear, as `<layer>/preact` + an activation node
  `<layer>`: the gradient needs the pre-activation, which a fused layer never stores. The
  alternative, a fused kernel writing the pre-activation as a second output, would save the
  activation's extra read of it, but needs a second output in every kernel family (direct,
  GEMM, Winograd, depthwise); the split costs one element-wise pass over a tensor that the
  backward pass reads anyway, and inference still fuses (passes/simplify.py). The gradient
  costs no pass of its own: fuse_act_grad.py applies it as its dy is stored.
Nodes keep their names, so `<layer>` is the same value in inference and training.
"""

from __future__ import annotations

from cnnc import rng as crandom
from cnnc.ir import activations
from cnnc.ir.graph import Graph, Node
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder

# Layer ops whose training behaviour differs, and the op that computes the training value.
REPLACED_IN_TRAINING = {"dropout": "dropout_train", "batchnorm": "batchnorm_train"}


def _param(node: Node, suffix: str) -> str | None:
    for p in node.params:
        if p.rsplit("/", 1)[-1] == suffix:
            return p
    return None


def _dropout(b: GraphBuilder, node: Node, seed: int) -> None:
    layer_seed = node.attrs["seed"]
    if layer_seed is None:
        layer_seed = crandom.derive_seed(seed, node.name)
    b.add(node.name, "dropout_train", node.inputs,
          {"rate": node.attrs["rate"], "seed": layer_seed & 0xFFFFFFFF}, like=node)


def _batchnorm(b: GraphBuilder, node: Node) -> None:
    a = node.attrs
    (x,) = node.inputs
    stats = b.add(names.stats(node.name), "batchnorm_stats", (x,), like=node)
    affine = [p for p in (_param(node, "gamma") if a["scale"] else None,
                          _param(node, "beta") if a["center"] else None) if p is not None]
    b.add(node.name, "batchnorm_train", (x, stats, *affine),
          {"epsilon": a["epsilon"], "center": a["center"], "scale": a["scale"]}, like=node)
    for index, suffix in enumerate(("moving_mean", "moving_variance")):
        moving = _param(node, suffix)
        b.add(names.update(moving), "moving_average_update", (moving, stats),
              {"index": index, "momentum": a["momentum"]}, like=node)


def _split_activation(b: GraphBuilder, node: Node) -> None:
    act = node.attrs["activation"]
    pre = b.add(names.preactivation(node.name), node.op, node.inputs,
                node.attrs.replace(activation="linear"), node.params, like=node)
    b.add(node.name, "activation", (pre,), {"activation": act}, like=node)


def _needs_split(node: Node) -> bool:
    return (node.op != "activation" and node.opdef.fuses_activation
            and "activation" in node.attrs and activations.reads_input(node.attrs))


def training_mode(graph: Graph, *, seed: int) -> Graph:
    b = GraphBuilder(graph)
    for node in graph.nodes:
        if node.op == "dropout":
            _dropout(b, node, seed)
        elif node.op == "batchnorm":
            _batchnorm(b, node)
        elif _needs_split(node):
            _split_activation(b, node)
        else:
            b.keep(node)
    return b.build()
