"""The NumPy interpreter: runs a graph node by node through the implementation table.

It walks the same schedule as the OpenCL backend (cnnc/passes/schedule.py), with the same
liveness: an environment maps value names to arrays; each node's operands are looked up (values,
then state tensors), its implementation is called, and every value is dropped after its last
reader unless it was asked for. A failure inside an implementation is re-raised tagged with the node, its op
and its place in the spec. Update ops write the backend's state arrays in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from cnnc.backends.base import Exchange, check_exchange, check_feeds, check_fetch
from cnnc.backends.numpy.call import Call
from cnnc.backends.numpy.table import IMPLS
from cnnc.backends.step_figures import Record, StepFigures, host_figures
from cnnc.errors import CnncError, InputError
from cnnc.ir.graph import Graph, Node
from cnnc.ir.shapes import shape_str
from cnnc.ir.updates import step_scalars
from cnnc.passes.schedule import schedule


class HostState(Protocol):
    """What an executable needs of its backend (backend.py's NumpyBackend, which imports this
    module): the state arrays it reads and updates in place, and where step figures go."""

    dtype: np.dtype

    def state_names(self) -> tuple[str, ...]: ...

    def state_arrays(self) -> Mapping[str, np.ndarray]: ...

    def keep_step_figures(self, figures: StepFigures) -> None: ...


class ExecutionError(CnncError):
    """An op implementation failed on a node: a backend bug or values it cannot handle."""


class NumpyExecutable:
    """A graph bound to the NumPy backend for one batch size (cnnc.backends.base.Executable)."""

    def __init__(self, backend: HostState, graph: Graph, batch: int):
        if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
            raise InputError(f"the batch size must be a positive integer, got {batch!r}")
        for node in graph.nodes:
            if node.op not in IMPLS:
                raise node.located(ExecutionError(f"the NumPy backend has no op '{node.op}'"))
        self.graph = graph
        self.batch = batch
        self._backend = backend
        # The same order and liveness as the OpenCL backend's plan (cnnc/passes/schedule.py).
        self.schedule = schedule(graph)

    # ------------------------------------------------------------ running

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
        check_fetch(self.graph, fetch, state=self._backend.state_names())
        checked = check_feeds(self.graph, self.batch, feeds, self._backend.dtype)
        if record is not None:  # kept by the backend for read_step_figures (computed now)
            wanted = [*fetch, *(v for v in (record.loss, record.prediction) if v not in fetch)]
            out = self.run(checked, wanted, step=step, learning_rate=learning_rate,
                           momentum=momentum,
                           first_example=first_example, exchange=exchange)
            self._backend.keep_step_figures(host_figures(
                out[record.loss], out[record.prediction], checked[record.target]))
            return {name: out[name] for name in fetch}
        exchange = exchange or {}
        check_exchange(self.graph, exchange)
        keep = set(fetch)
        state = self._backend.state_arrays()
        dtype = self._backend.dtype
        env: dict[str, np.ndarray] = {}
        for name, frees in zip(self.schedule.order, self.schedule.frees, strict=True):
            node = self.graph.node(name)
            out = self._run_node(node, env, state, checked, dtype, step, learning_rate,
                                 first_example, momentum)
            if node.name in exchange:
                out = self._exchanged(node, out, exchange[node.name])
            if out is not None:
                env[node.name] = out
            for value in frees:
                if value not in keep:
                    env.pop(value, None)
        result = {}
        for name in fetch:
            value = env[name] if name in env else state[name]
            result[name] = np.array(value, copy=True)
        return result

    def _run_node(self, node: Node, env: dict[str, np.ndarray], state: Mapping[str, np.ndarray],
                  feeds: Mapping[str, np.ndarray], dtype: np.dtype, step: int,
                  learning_rate: float | None, first_example: int = 0,
                  momentum: float | None = None) -> np.ndarray | None:
        op = node.opdef
        try:
            operands = [env[v] if v in env else state[v] for v in node.operands]
        except KeyError as err:
            raise node.located(ExecutionError(
                f"state tensor '{err.args[0]}' has not been initialised")) from None
        scalars: tuple = ()
        if op.scalars is not None:
            # an update without a learning rate (ema_update) gets 0.0, which it ignores
            lr = node.attrs.get("learning_rate", 0.0) if learning_rate is None else learning_rate
            scalars = tuple(dtype.type(s) for s in
                            step_scalars(node.op, node.attrs, step, lr, momentum))
        call = Call(node=node, dtype=dtype, step=step, first_example=first_example,
                    scalars=scalars, feeds=feeds)
        try:
            with np.errstate(over="ignore", under="ignore"):
                out = IMPLS[node.op](call, *operands)
        except CnncError as err:
            raise node.located(err) from None
        except Exception as err:  # a bug or unhandled values: say which node, keep the cause
            raise node.located(ExecutionError(
                f"{node.op} failed: {type(err).__name__}: {err}")) from err
        if node.shape is None:
            return None
        want = self.graph.concrete_shape(node.name, self.batch)
        if out is None or out.shape != want:
            got = "nothing" if out is None else shape_str(out.shape)
            raise node.located(ExecutionError(
                f"{node.op} produced {got}, the graph says {shape_str(want)}"))
        return out

    def _exchanged(self, node: Node, out: np.ndarray, replace) -> np.ndarray:
        """The host's replacement for a node's value (Exchange), same shape, compute dtype."""
        new = np.array(replace(out.copy()), dtype=self._backend.dtype)
        if new.shape != out.shape:
            raise node.located(ExecutionError(
                f"the exchange returned shape {shape_str(new.shape)}, not {shape_str(out.shape)}"))
        return new
