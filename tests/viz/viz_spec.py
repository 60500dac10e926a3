"""The small spec the picture tests share (a module, not conftest, so tests can import it)."""

# 12x12 gray images; convolutions with 1 and 6 input channels, two pooling layers, a batch norm
# between the first convolution and its activation (folded, with the activation, into the
# convolution at inference), dropout.
VIZ_SPEC = """\
network: small
input: [12, 12, 1]
layers:
  - {conv2d: [6, 3], padding: same, use_bias: false}
  - batchnorm
  - {activation: relu}
  - {maxpool2d: 2}
  - {conv2d: [8, 3], activation: relu, padding: same}
  - {maxpool2d: 2}
  - flatten
  - {dropout: 0.25}
  - {dense: 10, activation: softmax}
train:
  dataset: fashion_mnist
  epochs: 2
  batch_size: 16
  optimizer: {name: adam, learning_rate: 0.01}
  validation_size: 32
  seed: 3
"""

