"""Small graphs for tests: a chain of layers in one line, a graph of one op, a one-shot run.

    g = chain((4, 4, 1), ("conv2d", 2, 3, {"padding": "same"}), ("flatten",), ("dense", 3))
    g = single_op("conv2d_grad_input", inputs={"dy": (4, 4, 2)}, state={"k": (3, 3, 1, 2)},
                  attrs={...})
    out = run(g, {"input_layer": x}, {"conv2d/kernel": k, ...})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnnc.backends.numpy import NumpyBackend
from cnnc.frontend.lower import LayerDecl, lower
from cnnc.ir.graph import Graph, Node, StateSpec, infer_shapes, verify
from cnnc.ir.ops import OPS


def chain(input_shape: Sequence[int], *layers: Sequence[Any], name: str = "net",
          train: Any = None) -> Graph:
    """A sequential network: each layer is (op, *positional[, {keywords}])."""
    decls = [LayerDecl("input", [tuple(input_shape)])]
    for layer in layers:
        op, *rest = layer
        keywords = rest.pop() if rest and isinstance(rest[-1], dict) else {}
        decls.append(LayerDecl(op, rest, keywords))
    return lower(name, decls, train=train)


def single_op(
    op: str,
    inputs: Mapping[str, Any] = (),
    state: Mapping[str, Sequence[int]] = (),
    attrs: Mapping[str, Any] | None = None,
    *,
    operands: Sequence[str] | None = None,
    name: str = "out",
) -> Graph:
    """A graph of input nodes, state tensors and one `op` node named `name`.

    inputs: name -> shape without batch, or (shape, dtype). operands: the node's inputs in
    order (default: the inputs, then the state, in the order given).
    """
    nodes = []
    for n, spec in dict(inputs).items():
        shape, dtype = spec if isinstance(spec, tuple) and len(spec) == 2 and isinstance(
            spec[1], str) else (spec, "float32")
        nodes.append(Node(n, "input", attrs=OPS["input"].check_attrs(
            {"shape": tuple(shape), "dtype": dtype})))
    specs = tuple(StateSpec(n, tuple(s)) for n, s in dict(state).items())
    order = tuple(operands) if operands is not None else (*dict(inputs), *dict(state))
    nodes.append(Node(name, op, order, OPS[op].check_attrs(dict(attrs or {}))))
    graph = infer_shapes(Graph(op, tuple(nodes), (name,) if OPS[op].group != "update" else (),
                               state=specs))
    verify(graph)
    return graph


def run(
    graph: Graph,
    feeds: Mapping[str, np.ndarray],
    state: Mapping[str, np.ndarray] | None = None,
    fetch: Sequence[str] | None = None,
    *,
    dtype: str = "float64",
    step: int = 0,
    learning_rate: float | None = None,
    backend: NumpyBackend | None = None,
) -> dict[str, np.ndarray]:
    """Run a graph once on the NumPy backend (state written into `backend` if given)."""
    backend = backend or NumpyBackend(dtype)
    if state:
        backend.init_state([s for s in graph.state if s.name in state], state)
    batch = len(next(iter(feeds.values()))) if feeds else 1
    fetch = list(fetch) if fetch is not None else list(graph.outputs)
    return backend.compile(graph, batch).run(feeds, fetch, step=step,
                                             learning_rate=learning_rate)


def training_graph_without(graph: Graph, config: Any, skip: str) -> Graph:
    """`graph`'s training graph under `config` with the pass named `skip` left out: what a
    fusion or sharing pass must agree with (loss, optimizer and seed as training_graph's)."""
    from cnnc.passes.pipeline import run_pipeline, training_pipeline

    passes = [p for p in training_pipeline(loss=config.loss, optimizer=config.optimizer, seed=0)
              if p.name != skip]
    return run_pipeline(graph, passes, check=True)
