"""What a backend is: state storage plus graphs compiled for one batch size.

The Model (cnnc/model.py) owns everything that is not backend-specific: batching, input checks,
initialisation, the step counter. A backend only keeps state tensors where it computes (host
arrays, device buffers) and runs a graph; every backend's run checks its feeds and fetches with
`check_feeds` and `check_fetch` below, so that all of them accept and refuse the same things.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from cnnc.backends.step_figures import Record, StepFigures
from cnnc.errors import CnncError, InputError, InternalError, did_you_mean
from cnnc.ir.graph import Graph, StateSpec
from cnnc.ir.shapes import shape_str

Exchange = Mapping[str, Callable[[np.ndarray], np.ndarray]]
"""Values the host replaces in the middle of a run: each function receives the value right after
its node has run and returns what every later reader sees instead (the same shape). Data-parallel
training reduces batch statistics across ranks this way (cnnc/distributed)."""


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
        first_example: int = 0,
        exchange: Exchange | None = None,
        record: Record | None = None,
        momentum: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run once: `feeds` gives every input node's value, `fetch` names the values wanted back.

        Update ops write their state in place. `step` feeds ops that use it; `learning_rate`
        overrides the update ops' attribute (learning-rate schedules). `first_example`: the
        index of the batch's first example within the global batch that data-parallel ranks
        share (dropout masks are keyed by it). `exchange`: see Exchange. `record`: keep the
        run's loss and count of right predictions for Backend.read_step_figures; with nothing
        to fetch or exchange, a backend may return before the run has finished (the OpenCL
        backend does: cnnc/backends/step_figures.py). `momentum` overrides sgd's momentum and
        adam/adamw's beta_1 for this step (one_cycle's cycle_momentum; ir/updates.step_scalars).
        """
        ...


class Backend(Protocol):
    name: str

    def init_state(self, specs: Sequence[StateSpec], values: Mapping[str, np.ndarray]) -> None:
        """Create (or replace) state tensors with the given initial values."""
        ...

    def read_state(self, names: Sequence[str]) -> dict[str, np.ndarray]: ...

    def write_state(self, values: Mapping[str, np.ndarray]) -> None: ...

    def compile(self, graph: Graph, batch: int, *, keep: Iterable[str] = ()) -> Executable:
        """keep: values to keep readable after a run besides the outputs."""
        ...

    def read_step_figures(self) -> list[StepFigures]:
        """The figures of the runs made with a Record since the last call, in order; waits
        for those runs to finish."""
        ...


# ---------------------------------------------------------------- checks of Executable.run


def host_dtype(graph: Graph, value: str, float_dtype: np.dtype | type) -> np.dtype:
    """The NumPy dtype a value is fed or fetched as: int32 values (labels) as int32, every
    other value in the backend's floating-point dtype."""
    return np.dtype(np.int32 if graph.dtype_of(value) == "int32" else float_dtype)


def check_feeds(
    graph: Graph, batch: int, feeds: Mapping[str, Any], float_dtype: np.dtype | type
) -> dict[str, np.ndarray]:
    """Every input node's fed value, checked and in the dtype the backend computes in.

    A feed must exist for every input and for nothing else, have the input's shape at `batch`,
    and be of the input's kind: integers (any integer dtype, values within int32) for an int32
    input, floating point (any precision) for a float input. Nothing else is converted: integer
    images or float labels are an InputError, as a silent cast would hide a caller's mistake
    (the Model converts user data before it runs a graph; cnnc/inputs.py).
    """
    inputs = graph.inputs
    for key in feeds:
        if key not in inputs:
            raise InputError(f"'{key}' is not an input of graph '{graph.name}'",
                             hint=did_you_mean(key, inputs)
                             or f"its inputs are {', '.join(sorted(inputs))}")
    missing = [name for name in inputs if name not in feeds]
    if missing:
        raise InputError(f"no value fed for input '{missing[0]}'",
                         hint=f"graph '{graph.name}' takes inputs {', '.join(inputs)}; "
                              f"missing {', '.join(missing)}")
    return {name: _checked_feed(graph, batch, name, feeds[name], float_dtype) for name in inputs}


def _checked_feed(
    graph: Graph, batch: int, name: str, value: Any, float_dtype: np.dtype | type
) -> np.ndarray:
    try:
        value = np.asarray(value)
    except (TypeError, ValueError) as err:  # ragged lists and the like
        raise InputError(f"input '{name}' is not an array: {err}") from None
    want = graph.concrete_shape(name, batch)
    if value.shape != want:
        batch_only = value.ndim == len(want) and value.shape[1:] == want[1:]
        raise InputError(f"input '{name}' expects shape {shape_str(want)}, "
                         f"received {shape_str(value.shape)}",
                         hint=f"this run was compiled for batch {batch}: every feed must have "
                              f"shape ({batch}, ...)" if batch_only else None)
    dtype = host_dtype(graph, name, float_dtype)
    if dtype == np.int32:
        if not np.issubdtype(value.dtype, np.integer):
            raise InputError(f"input '{name}' expects integers, received {value.dtype}")
        limits = np.iinfo(np.int32)
        if not np.can_cast(value.dtype, dtype) and value.size and (
                value.min() < limits.min or value.max() > limits.max):
            raise InputError(f"input '{name}' holds integers outside the int32 range")
    elif not np.issubdtype(value.dtype, np.floating):
        raise InputError(f"input '{name}' expects floating-point values, "
                         f"received {value.dtype}")
    return value.astype(dtype, copy=False)


def check_fetch(
    graph: Graph,
    fetch: Sequence[str],
    *,
    state: Collection[str] = (),
    kept: Collection[str] | None = None,
) -> None:
    """Check the names a run is asked to return: values of the graph or state tensors.

    state: state tensors the backend holds besides the graph's own. kept: the values that
    survive a run (None: all of them). A wrong name is cnnc's own mistake (the Model and the
    tools choose what to fetch), hence InternalError.
    """
    if isinstance(fetch, str):
        raise InternalError("fetch must be a sequence of names, not one string")
    for name in fetch:
        node = graph.node_map.get(name)
        if node is None:
            if name in graph.state_map or name in state:
                continue
            close = did_you_mean(name, [*graph.node_map, *graph.state_map, *state])
            hint = {"hint": close} if close else {}  # else InternalError's: please report
            raise InternalError(f"'{name}' is not a value of graph '{graph.name}'", **hint)
        if node.shape is None:
            raise InternalError(f"'{name}' is an update and produces no value")
        if kept is not None and name not in kept:
            raise InternalError(f"'{name}' cannot be fetched: it is not kept after the run of "
                                f"'{graph.name}' (compile with keep=['{name}'])")


def check_exchange(graph: Graph, exchange: Exchange) -> None:
    """Only values that nodes compute can be exchanged (cnnc's own choice: InternalError)."""
    for name in exchange:
        node = graph.node_map.get(name)
        if node is None or node.shape is None or node.op == "input":
            raise InternalError(f"'{name}' is not a computed value of graph '{graph.name}' and "
                                "cannot be exchanged")


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
