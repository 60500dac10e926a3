"""NumPy implementation of the weights' moving-average update (cnnc/ir/ema.py), keyed by op
name: the reference kernels/ema.cl is checked against."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl


def _ema_update(call: Call, shadow: np.ndarray, param: np.ndarray) -> None:
    m, c = call.scalars
    shadow[...] = m * shadow + c * param


EMA_IMPLS: dict[str, Impl] = {"ema_update": _ema_update}
