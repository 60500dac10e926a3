"""The NumPy interpreter: runs a graph node by node through the implementation table.

An environment maps value names to arrays; each node's operands are looked up (values, then state
tensors), its implementation is called, and every value is dropped after its last reader unless
it was asked for. A failure inside an implementation is re-raised tagged with the node, its op
and its place in the spec. Update ops write the backend's state arrays in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from cnnc.backends.numpy.call import Call
from cnnc.backends.numpy.table import IMPLS
from cnnc.errors import CnncError, InputError, did_you_mean
from cnnc.ir.graph import Graph, Node
from cnnc.ir.layers import shape_str

if TYPE_CHECKING:
    from cnnc.backends.numpy.backend import NumpyBackend


class ExecutionError(CnncError):
    """An op implementation failed on a node: a backend bug or values it cannot handle."""


def _batch_shape(shape: tuple, batch: int) -> tuple[int, ...]:
    return tuple(batch if d is None else d for d in shape)


def last_uses(graph: Graph) -> list[list[str]]:
    """For each node index, the values whose last reader (or, if unread, producer) it is."""
    last: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        if node.shape is not None:
            last[node.name] = i
        for v in node.operands:
            if v in graph.node_map:
                last[v] = i
    frees: list[list[str]] = [[] for _ in graph.nodes]
    for value, i in last.items():
        frees[i].append(value)
    return frees


class NumpyExecutable:
    """A graph bound to the NumPy backend for one batch size (cnnc.backends.base.Executable)."""

    def __init__(self, backend: NumpyBackend, graph: Graph, batch: int):
        if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
            raise InputError(f"the batch size must be a positive integer, got {batch!r}")
        for node in graph.nodes:
            if node.op not in IMPLS:
                raise node.located(ExecutionError(f"the NumPy backend has no op '{node.op}'"))
        self.graph = graph
        self.batch = batch
        self._backend = backend
        self._frees = last_uses(graph)
        self._inputs = [n for n in graph.nodes if n.op == "input"]

    # ------------------------------------------------------------ checks

    def _check_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = {n.name for n in self._inputs}
        for key in feeds:
            if key not in names:
                raise InputError(f"'{key}' is not an input of graph '{self.graph.name}'",
                                 hint=did_you_mean(key, names)
                                 or f"its inputs are {', '.join(sorted(names))}")
        out = {}
        for node in self._inputs:
            if node.name not in feeds:
                raise InputError(f"no value fed for input '{node.name}'")
            value = np.asarray(feeds[node.name])
            want = _batch_shape(node.shape, self.batch)
            if value.shape != want:
                raise InputError(f"input '{node.name}' expects shape {shape_str(want)}, "
                                 f"received {shape_str(value.shape)}")
            if node.attrs["dtype"] == "int32":
                if not np.issubdtype(value.dtype, np.integer):
                    raise InputError(f"input '{node.name}' expects integers, "
                                     f"received {value.dtype}")
            else:
                if not np.issubdtype(value.dtype, np.floating):
                    raise InputError(f"input '{node.name}' expects floating-point values, "
                                     f"received {value.dtype}")
                value = value.astype(self._backend.dtype, copy=False)
            out[node.name] = value
        return out

    def _check_fetch(self, fetch: Sequence[str]) -> None:
        if isinstance(fetch, str):
            raise TypeError("fetch must be a sequence of names, not one string")
        known = self.graph.node_map
        state = self._backend.state_names()
        for name in fetch:
            node = known.get(name)
            if node is None and name not in state:
                raise CnncError(f"'{name}' is not a value of graph '{self.graph.name}'",
                                hint=did_you_mean(name, list(known) + list(state)))
            if node is not None and node.shape is None:
                raise CnncError(f"'{name}' is an update and produces no value")

    # ------------------------------------------------------------ running

    def run(
        self,
        feeds: Mapping[str, np.ndarray],
        fetch: Sequence[str],
        *,
        step: int = 0,
        learning_rate: float | None = None,
    ) -> dict[str, np.ndarray]:
        self._check_fetch(fetch)
        checked = self._check_feeds(feeds)
        keep = set(fetch)
        state = self._backend.state_arrays()
        dtype = self._backend.dtype
        env: dict[str, np.ndarray] = {}
        for i, node in enumerate(self.graph.nodes):
            out = self._run_node(node, env, state, checked, dtype, step, learning_rate)
            if out is not None:
                env[node.name] = out
            for value in self._frees[i]:
                if value not in keep:
                    env.pop(value, None)
        result = {}
        for name in fetch:
            value = env[name] if name in env else state[name]
            result[name] = np.array(value, copy=True)
        return result

    def _run_node(self, node: Node, env: dict[str, np.ndarray], state: Mapping[str, np.ndarray],
                  feeds: Mapping[str, np.ndarray], dtype: np.dtype, step: int,
                  learning_rate: float | None) -> np.ndarray | None:
        op = node.opdef
        try:
            operands = [env[v] if v in env else state[v] for v in node.operands]
        except KeyError as err:
            raise node.located(ExecutionError(
                f"state tensor '{err.args[0]}' has not been initialised")) from None
        scalars: tuple = ()
        if op.scalars is not None:
            lr = node.attrs["learning_rate"] if learning_rate is None else learning_rate
            scalars = tuple(dtype.type(s) for s in op.scalars(node.attrs, step, lr))
        call = Call(node=node, dtype=dtype, step=step, scalars=scalars, feeds=feeds)
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
        want = _batch_shape(node.shape, self.batch)
        if out is None or out.shape != want:
            got = "nothing" if out is None else shape_str(out.shape)
            raise node.located(ExecutionError(
                f"{node.op} produced {got}, the graph says {shape_str(want)}"))
        return out
