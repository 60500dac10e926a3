"""Initial values of state tensors, as Keras initialises layers by default, from a seed.

glorot_uniform kernels (uniform in +-sqrt(6 / (fan_in + fan_out)), fans from StateSpec.fan),
zero biases, beta and moving means, gamma and moving variances of one, zero optimizer slots.
Each tensor draws from its own generator seeded with (seed, crc32(name)): adding or removing a
layer never changes another layer's initial values, and the same seed gives the same values.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from math import prod, sqrt

import numpy as np

from cnnc.errors import CnncError
from cnnc.ir.graph import StateSpec
from cnnc.ir.preprocessing import CONSTANT_INIT


def _fans(spec: StateSpec) -> tuple[int, int]:
    """Keras' fans: given by the op, else from the shape (receptive field x channels)."""
    if spec.fan is not None:
        return spec.fan
    shape = spec.shape
    if len(shape) < 2:
        n = shape[0] if shape else 1
        return n, n
    receptive = prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def generator(seed: int, name: str) -> np.random.Generator:
    """The random stream of one tensor."""
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(name.encode())])


def initial_value(spec: StateSpec, seed: int, dtype: str = "float32") -> np.ndarray:
    if spec.init == "zeros":
        return np.zeros(spec.shape, dtype=dtype)
    if spec.init == "ones":
        return np.ones(spec.shape, dtype=dtype)
    if spec.init == "glorot_uniform":
        fan_in, fan_out = _fans(spec)
        limit = sqrt(6.0 / (fan_in + fan_out))
        values = generator(seed, spec.name).uniform(-limit, limit, size=spec.shape)
        return values.astype(dtype)
    if spec.init.startswith(CONSTANT_INIT):
        # values a spec gives (normalization's mean and variance), one per channel
        values = [float(v) for v in spec.init[len(CONSTANT_INIT):].split(",")]
        return np.asarray(values, dtype=dtype).reshape(spec.shape)
    raise CnncError(f"'{spec.name}' asks for an unknown initializer '{spec.init}'")


def initial_values(specs: Iterable[StateSpec], seed: int,
                   dtype: str = "float32") -> dict[str, np.ndarray]:
    return {s.name: initial_value(s, seed, dtype) for s in specs}
