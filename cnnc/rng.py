"""Counter-based random numbers: the same bits from NumPy and from an OpenCL kernel.

uniform(seed, step, i) hashes the three 32-bit counters with the 'lowbias32' integer hash
(Chris Wellons' hash-prospector, bias ~0.17): a pure function of its inputs, so every element of a
dropout mask can be computed independently, in any order, on any backend. kernels/random.cl holds
the same arithmetic in OpenCL C. The index i counts elements from the start of the whole (global)
batch: a data-parallel rank that holds examples [k, k + n) of it starts at k times the elements
per example (`start`), so N ranks draw the masks one device would.

    k1 = lowbias32(seed)
    k2 = lowbias32(k1 ^ step)
    h  = lowbias32(k2 ^ i)
    u  = (h >> 8) * 2**-24          # in [0, 1), exactly representable in float32
"""

from __future__ import annotations

import zlib

import numpy as np

_M32 = np.uint64(0xFFFFFFFF)


def lowbias32(x: np.ndarray) -> np.ndarray:
    """The 32-bit integer hash, on uint32 arrays (computed in uint64 to avoid overflow warnings)."""
    x = np.asarray(x, dtype=np.uint64) & _M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & _M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & _M32
    x ^= x >> np.uint64(16)
    return x


def uniform(seed: int, step: int, count: int, start: int = 0) -> np.ndarray:
    """float32 uniforms in [0, 1) for flat indices start..start+count-1 (modulo 2**32)."""
    k1 = lowbias32(np.uint64(seed & 0xFFFFFFFF))
    k2 = lowbias32(k1 ^ np.uint64(step & 0xFFFFFFFF))
    i = (np.arange(count, dtype=np.uint64) + np.uint64(start & 0xFFFFFFFF)) & _M32
    h = lowbias32(k2 ^ i)
    return ((h >> np.uint64(8)).astype(np.float32) * np.float32(2.0**-24)).astype(np.float32)


def keep_mask(seed: int, step: int, shape: tuple[int, ...], rate: float,
              start: int = 0) -> np.ndarray:
    """The dropout keep-mask (bool) for a tensor of `shape`, row-major flat indices from
    `start` (the first element's index in the whole batch)."""
    count = int(np.prod(shape)) if shape else 1
    return (uniform(seed, step, count, start) >= np.float32(rate)).reshape(shape)


def derive_seed(base: int, name: str) -> int:
    """A per-layer 32-bit seed from the training seed and the layer's name (stable across runs)."""
    return int(lowbias32(np.uint64((base ^ zlib.crc32(name.encode())) & 0xFFFFFFFF)))
