"""The tiny spec the training tests share (a module, not conftest, so tests can import it)."""

# Small enough that an epoch takes a fraction of a second on the NumPy backend, but with every
# kind of state resumption must restore: dropout (step-driven masks), batch-norm moving
# statistics, and optimizer slots.
TINY_SPEC = """\
network: tiny
input: [12, 12, 1]
layers:
  - {conv2d: [6, 3], padding: same, use_bias: false}
  - batchnorm
  - {activation: relu}
  - {maxpool2d: 2}
  - flatten
  - {dropout: 0.25}
  - {dense: 10, activation: softmax}
train:
  dataset: fashion_mnist
  epochs: 3
  batch_size: 16
  optimizer: {name: adam, learning_rate: 0.01}
  validation_size: 32
  augment: {shift: 1, flip: true}
  schedule: {name: cosine, warmup_epochs: 1}
  seed: 5
"""

# TINY_SPEC with every augmentation, mixup/cutmix's soft targets and label smoothing on: what
# the resume tests run as well (cnnc/train/augmentation.py).
AUGMENTED_SPEC = TINY_SPEC.replace(
    "augment: {shift: 1, flip: true}",
    "augment: {crop: 2, crop_padding: reflect, shift: 1, flip: true, vflip: true, rotate: 10, "
    "translate: 0.1, erase: 0.5, cutout: 4, mixup: 0.2, cutmix: 1.0}\n  label_smoothing: 0.1")
