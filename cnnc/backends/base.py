"""What a backend is: state storage plus graphs compiled for one batch size.

The Model (cnnc/model.py) owns everything that is not backend-specific: batching, input checks,
initialisation, the step counter. A backend only keeps state tensors where it computes (host
arrays, device buffers) and runs a graph.
"""

from __future__ import annotations

import importlib
from typing import Mapping, Protocol, Sequence

import numpy as np

from cnnc.errors import CnncError
from cnnc.ir.graph import Graph, StateSpec


class Executable(Protocol):
    """A graph bound to a backend for one batch size."""

    graph: Graph
    batch: int

    def run(
        self,
        feeds: Mapping[str, np.ndarray],
        fetch: Sequence[str],
        *,
        step: int = 0,
        learning_rate: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run once: `feeds` gives every input node's value, `fetch` names the values wanted back.

        Update ops write their state in place. `step` feeds ops that use it; `learning_rate`
        overrides the update ops' attribute (learning-rate schedules).
        """
        ...


class Backend(Protocol):
    name: str

    def init_state(self, specs: Sequence[StateSpec], values: Mapping[str, np.ndarray]) -> None:
        """Create (or replace) state tensors with the given initial values."""
        ...

    def read_state(self, names: Sequence[str]) -> dict[str, np.ndarray]: ...

    def write_state(self, values: Mapping[str, np.ndarray]) -> None: ...

    def compile(self, graph: Graph, batch: int) -> Executable: ...


# Backends by name; modules are imported on first use so numpy-only users never load pyopencl.
BACKENDS = {
    "numpy": "cnnc.backends.numpy:NumpyBackend",
    "opencl": "cnnc.backends.opencl:OpenCLBackend",
}


def get_backend(name: str, **options) -> Backend:
    from cnnc.errors import did_you_mean

    if name not in BACKENDS:
        raise CnncError(f"unknown backend '{name}'", hint=did_you_mean(name, BACKENDS)
                        or f"choose one of {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)
