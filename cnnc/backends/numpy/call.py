"""What the NumPy interpreter hands an op implementation besides its operands."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnc.ir.args import Attrs
from cnnc.ir.graph import Node


@dataclass(frozen=True)
class Call:
    """One node's execution: its attributes, the run's step, the compute dtype, update scalars.

    Implementations are `impl(call, *operands) -> ndarray | None` where operands are the node's
    inputs followed by its parameters (Node.operands), already looked up.
    """

    node: Node
    dtype: np.dtype
    step: int = 0
    first_example: int = 0  # this run's first example within the global batch (data parallel)
    scalars: tuple[Any, ...] = ()  # update ops: OpDef.scalars(attrs, step, lr), in `dtype`
    feeds: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def attrs(self) -> Attrs:
        return self.node.attrs

    def const(self, value: float) -> Any:
        """A scalar in the compute dtype, so float32 runs never promote to float64."""
        return self.dtype.type(value)


Impl = Callable[..., "np.ndarray | None"]
