"""Adapting preprocessing layers before training (a train-stage helper): the mean and variance of
each `normalization` layer (cnnc/ir/preprocessing.py) from the training split, as Keras'
Normalization.adapt computes them, written into the model's non-trainable weights."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from cnnc.backends.numpy.backend import NumpyBackend
from cnnc.errors import InputError
from cnnc.inputs import input_feeds
from cnnc.ir.graph import Graph, Node
from cnnc.ir.preprocessing import adapts

# Examples per forward pass while adapting: bounds the memory of a layer deep in the network.
ADAPT_BATCH = 256


def adaptive_layers(graph: Graph, *, every: bool = False) -> list[Node]:
    """The normalization layers to adapt, in graph order: those the spec leaves to the data
    (every normalization layer with every=True, as `Model.adapt` does)."""
    return [n for n in graph.nodes if n.op == "normalization" and (every or adapts(n.attrs))]


def _upstream(graph: Graph, value: str) -> Graph:
    """The part of the graph that computes `value`, with `value` as its only output."""
    by_name = graph.node_map
    needed, todo = set(), [value]
    while todo:
        name = todo.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        todo.extend(by_name[name].inputs)
    used = {p for n in graph.nodes if n.name in needed for p in n.params}
    return graph.with_nodes([n for n in graph.nodes if n.name in needed], outputs=(value,),
                            state=tuple(s for s in graph.state if s.name in used), train=None)


def _batches(graph: Graph, x: Any, weights: dict[str, np.ndarray],
             value: str) -> Iterator[np.ndarray]:
    """The values of `value` for every example, ADAPT_BATCH at a time, in float64."""
    part = _upstream(graph, value)
    feeds = input_feeds(graph, x)
    count = len(next(iter(feeds.values())))
    backend = NumpyBackend("float64")
    backend.init_state(part.state, {s.name: np.asarray(weights[s.name], np.float64)
                                    for s in part.state})
    for start in range(0, count, ADAPT_BATCH):
        chunk = {k: np.asarray(v[start:start + ADAPT_BATCH], np.float64)
                 for k, v in feeds.items()}
        if value in chunk:
            yield chunk[value]
        else:
            batch = len(next(iter(chunk.values())))
            yield backend.compile(part, batch).run(chunk, [value])[value]


def channel_statistics(batches: Any) -> tuple[np.ndarray, np.ndarray]:
    """(mean, biased variance) per channel (the last axis) over every other axis, in float64:
    two passes (`batches` is called twice), so a large mean does not cancel the variance."""
    total, count = None, 0
    for b in batches():
        rows = b.reshape(-1, b.shape[-1])
        total = rows.sum(axis=0) if total is None else total + rows.sum(axis=0)
        count += len(rows)
    if not count:
        raise InputError("cannot adapt a normalization layer to no examples")
    mean = total / count
    squares = sum(((b.reshape(-1, b.shape[-1]) - mean) ** 2).sum(axis=0) for b in batches())
    return mean, squares / count


def adapt(model, x: Any, *, every: bool = True) -> list[str]:
    """Set the mean and variance of the model's normalization layers from the examples `x`
    (every such layer, or only those left to the data with every=False), in graph order, each
    seeing the ones before it adapted. Returns the layers adapted."""
    graph = model.graph
    done = []
    for node in adaptive_layers(graph, every=every):
        weights = model.get_weights()
        mean, var = channel_statistics(
            lambda node=node, weights=weights: _batches(graph, x, weights, node.inputs[0]))
        mean_name, var_name = node.params
        weights[mean_name], weights[var_name] = mean, var
        model.set_weights(weights)
        done.append(node.name)
    return done
