"""Small graphs with every tunable op, on odd shapes, for the tuner's tests."""

from __future__ import annotations

from cnnc.frontend.spec import load_spec
from cnnc.ir.graph import Graph
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.tune.space import tunable

# Odd spatial sizes and odd reduction channels; the columns (8 and 16 filters, 12 units) leave
# several register blocks to choose from. conv2d_1 has 9 input channels (not im2col's few);
# the strided transposed convolution takes phases.
SPEC = """
network: tiny_tune
input: [7, 5, 9]
layers:
  - {conv2d: [8, 3], padding: same, activation: relu}
  - {conv2d: [16, 3], padding: same, activation: relu}
  - {depthwise_conv2d: 3, padding: same, activation: relu}
  - {conv2d_transpose: [6, 3], strides: 2, padding: same, activation: relu}
  - flatten
  - {dense: 12, activation: relu}
  - {dense: 4, activation: softmax}
train:
  dataset: fashion_mnist
  batch_size: 3
  optimizer: {name: sgd, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
"""


def write_spec(folder) -> str:
    path = folder / "tiny_tune.yaml"
    path.write_text(SPEC)
    return str(path)


def tiny_training_graph(folder) -> Graph:
    return training_graph(load_spec(write_spec(folder)))


# The tunable ops that inference graphs alone hold (fused by the inference pipeline): a
# depthwise convolution with a batch norm folded in and the 1x1 one after it (9 odd channels,
# 6 filters), and one without either batch norm (depth multiplier 2: 12 channels, 8 filters);
# a 1x1 convolution with a batch norm folded in read by a global average pooling alone (one
# pointwise_avgpool node: a 4x3 map, 8 channels, 12 filters).
FUSED_SPEC = """
network: tiny_fused
input: [7, 5, 9]
layers:
  - {depthwise_conv2d: 3, padding: same, use_bias: false}
  - batchnorm
  - {activation: relu}
  - {conv2d: [6, 1]}
  - {depthwise_conv2d: 3, strides: 2, padding: same, depth_multiplier: 2}
  - {conv2d: [8, 1], activation: relu}
  - {conv2d: [12, 1], use_bias: false}
  - batchnorm
  - {activation: hard_swish}
  - global_avgpool2d
  - {dense: 4, activation: softmax}
"""


def tiny_inference_graph(folder) -> Graph:
    path = folder / "tiny_fused.yaml"
    path.write_text(FUSED_SPEC)
    return inference_graph(load_spec(str(path)))


def op_nodes(graphs: list[Graph], op: str) -> tuple[Graph, list]:
    """The first of `graphs` with tunable nodes of `op`, and those nodes."""
    return next((g, nodes) for g in graphs if (nodes := tunable_nodes(g, (op,))))


def tunable_nodes(graph: Graph, ops: tuple[str, ...] | None = None):
    return [n for n in graph.nodes if tunable(n) and (ops is None or n.op in ops)]
