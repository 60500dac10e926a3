"""NumPy implementations of the gathered convolutions (cnnc/ir/gathered.py), keyed by op name:
the reference for a chain of ShuffleNetV2 gathers read in place by the 1x1 convolution after
it (the layer's own implementation on the gathered channels, written out here)."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl
from cnnc.backends.numpy.fused_impls import FUSED_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.ir.gathered import LAYER_OF_GATHERED, gathered_channels


def gather(xs: tuple[np.ndarray, ...], segments) -> np.ndarray:
    """x[..., k0 + i * kstep] = xs[source][..., start + i] for each run."""
    x = np.empty((*xs[0].shape[:-1], gathered_channels(segments)), dtype=xs[0].dtype)
    for source, start, count, k0, step in segments:
        x[..., k0:k0 + count * step:step] = xs[source][..., start:start + count]
    return x


def _gathered(layer: str) -> Impl:
    run_layer = {**LAYER_IMPLS, **FUSED_IMPLS}[layer]

    def impl(call: Call, *operands: np.ndarray) -> np.ndarray:
        n = len(call.node.inputs)
        return run_layer(call, gather(operands[:n], call.attrs["segments"]), *operands[n:])
    return impl


GATHERED_IMPLS: dict[str, Impl] = {op: _gathered(layer) for op, layer in LAYER_OF_GATHERED.items()}
