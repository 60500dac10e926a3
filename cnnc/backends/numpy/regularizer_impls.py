"""NumPy implementation of the regularizer op (cnnc/ir/regularizers.py): an L2 penalty."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.call import Call, Impl


def _l2_penalty(call: Call, loss: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return np.asarray(loss + call.const(call.attrs["l2"]) * np.sum(weight * weight),
                      dtype=loss.dtype)


REGULARIZER_IMPLS: dict[str, Impl] = {"l2_penalty": _l2_penalty}
