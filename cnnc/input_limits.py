"""Every bound cnnc puts on what it reads, in one place: specs, data files, images, tensors.

Each bound is far above what a real network or dataset needs and far below what would make a
hostile or mistaken input hang cnnc or exhaust memory; what is over a bound is refused with a
message giving the figures, before the work (or the allocation) it would take. The README's
"What cnnc promises" section lists them, and tests/hostile/ checks that each holds.
"""

from __future__ import annotations

# ------------------------------------------------------------------ specs

MAX_SPEC_BYTES = 4 * 2**20  # a spec file or text; a 10,000-layer spec takes under 1 MiB
MAX_LAYERS = 10_000  # after `repeat` unrolling; ResNet-1001 has about 3,000 (with BN, ReLU)
MAX_NESTING = 32  # `repeat` blocks, parenthesised tuples, YAML lists and mappings
MAX_DSL_TOKENS = 100_000  # words, numbers and punctuation of a DSL spec (not spaces/comments)
MAX_YAML_NODES = 200_000  # values of a YAML spec, counted as expanded through aliases

# ------------------------------------------------------------------ networks

# No device holds a tensor of 1 TiB (the largest have a few hundred GiB): a parameter, or one
# example's activation, as large as that is a typo (`conv2d 99999999999 3`), refused at lowering.
MAX_TENSOR_BYTES = 2**40
MAX_PARAMETER_BYTES = 2**40  # all parameters together, as float32

# ------------------------------------------------------------------ data, weights, images

MAX_IDX_BYTES = 2**32  # one IDX file's values once decompressed (Fashion-MNIST's: 47 MB)
MAX_NPY_BYTES = 2**32  # one .npy array given to `cnnc predict`
MAX_IMAGE_PIXELS = 64 * 10**6  # one image file given to `cnnc predict` (8000x8000)
# The smallest side of an image a dataset folder may hold: a 1-pixel image carries no picture,
# and stretching it to the input's size would train on a flat colour.
MIN_IMAGE_SIDE = 2
# Images are reduced with Pillow (in 8-bit) to at most this many pixels a side before the float
# work of predict, so a large photo costs its decoded size once, not several float copies.
WORK_IMAGE_SIDE = 1024
MAX_SAFETENSORS_HEADER = 100 * 2**20  # the JSON header of a weights file (safetensors' own cap)


def size_text(nbytes: int) -> str:
    """A byte count for messages, in decimal units: '3.2 GB'."""
    value = float(nbytes)
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB", "EB"):
        if value < 1000 or unit == "EB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def count_text(n: int) -> str:
    """A count for messages: exact with separators up to 10^12, else in powers of ten."""
    return f"{n:,}" if n < 10**12 else f"{n:.3g}".replace("e+", "e")


__all__ = [
    "MAX_DSL_TOKENS",
    "MAX_IDX_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_LAYERS",
    "MAX_NESTING",
    "MAX_NPY_BYTES",
    "MAX_PARAMETER_BYTES",
    "MAX_SAFETENSORS_HEADER",
    "MAX_SPEC_BYTES",
    "MAX_TENSOR_BYTES",
    "MAX_YAML_NODES",
    "MIN_IMAGE_SIDE",
    "WORK_IMAGE_SIDE",
    "count_text",
    "size_text",
]
