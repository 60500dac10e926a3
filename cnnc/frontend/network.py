"""The Python front end: a builder that declares layers as Keras does, lowered like the others.

    net = cnnc.Network("fashion", input=(28, 28, 1))
    net.conv2d(64, 7, activation="relu", padding="same")
    x = net.maxpool2d(2, name="pool1")     # every layer method returns a handle
    y = net.conv2d(x, 64, 3, padding="same")   # a handle as a positional argument is an input
    net.add(x, y)
    net.train(epochs=10, optimizer="nadam")
    graph = net.build()

Layer methods come from the op table (any layer name or Keras class name: `net.dense`,
`net.Dense`), so the builder accepts exactly what the DSL and YAML accept. Checking happens in
`build()`, through the same lowering; errors point at the line of your code that declared the
layer.
"""

from __future__ import annotations

import inspect
import linecache
import numbers
import sys
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from cnnc.errors import CnncError, Span, SpecError, did_you_mean
from cnnc.frontend.lower import LayerDecl, dims_value, lower
from cnnc.ir.graph import Graph
from cnnc.ir.ops import layer_names, lookup_layer
from cnnc.ir.train_config import optimizer_keywords, parse_train_config


class UnknownLayerError(SpecError, AttributeError):
    """`net.conv2e(...)`: a CnncError for callers, an AttributeError for hasattr() and friends."""


class Layer:
    """A handle on a declared layer. Pass it to another layer's method to make it an input."""

    __slots__ = ("_decl", "_network")

    def __init__(self, network: Network, decl: LayerDecl):
        self._network = network
        self._decl = decl

    @property
    def op(self) -> str:
        return self._decl.op

    @property
    def name(self) -> str | None:
        """The name given to the layer, or None for one named automatically by build()."""
        return self._decl.name

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<Layer {self.op}{name} of Network {self._network.name!r}>"


def _plain(value: Any) -> Any:
    """NumPy scalars to Python numbers, lists to tuples and '3x5' to (3, 5), as in the DSL."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return dims_value(value) or value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def _caller() -> tuple[str, int, int] | None:
    """File, line and column of the first frame outside this module: the user's call."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    if frame is None:
        return None
    column = 1
    positions = getattr(inspect.getframeinfo(frame, context=0), "positions", None)
    if positions is not None and positions.col_offset is not None:
        column = positions.col_offset + 1
    return frame.f_code.co_filename, frame.f_lineno, column


class Network:
    """A network declared in Python. `input` adds a first input layer of that shape."""

    def __init__(self, name: str = "network", input: Any = None, *,
                 train: Mapping[str, Any] | None = None):
        self.name = name
        self._decls: list[LayerDecl] = []
        self._where: dict[int, tuple[str, int, int] | None] = {}
        self._outputs: list[Layer | str] | None = None
        self._train: dict[str, Any] | None = dict(train) if train is not None else None
        self._train_where: tuple[str, int, int] | None = _caller() if train is not None else None
        if input is not None:
            self.layer("input", input)

    # ------------------------------------------------------------ declaring

    def layer(self, op: str, *args: Any, name: str | None = None, inputs: Any = None,
              **kwargs: Any) -> Layer:
        """Declare a layer by op name; `net.layer("conv2d", 64, 3)` is `net.conv2d(64, 3)`.

        Handles among `args` (or in `inputs`, which also takes layer names) are the layer's
        inputs; without any, the input is the layer declared just before.
        """
        handles = [a for a in args if isinstance(a, Layer)]
        values = [a for a in args if not isinstance(a, Layer)]
        if handles and inputs is not None:
            raise SpecError(f"{op}: give the inputs as layer arguments or as inputs=, not both")
        refs = handles or (None if inputs is None else self._refs(op, inputs))
        decl = LayerDecl(
            op=op,
            positional=tuple(_plain(v) for v in values),
            keywords={k: _plain(v) for k, v in kwargs.items()},
            name=name,
            inputs=None if refs is None else [self._ref(r) for r in refs],
        )
        self._where[id(decl)] = _caller()
        self._decls.append(decl)
        return Layer(self, decl)

    def _refs(self, op: str, inputs: Any) -> list[Layer | str]:
        if isinstance(inputs, (Layer, str)):
            return [inputs]
        if isinstance(inputs, Iterable):
            refs = list(inputs)
            if all(isinstance(r, (Layer, str)) for r in refs):
                return refs
        raise SpecError(f"{op}: inputs= takes layers (or layer names), got {inputs!r}")

    def _ref(self, ref: Layer | str) -> LayerDecl | str:
        if isinstance(ref, str):
            return ref
        if ref._network is not self:
            raise SpecError(f"{ref!r} belongs to another network")
        return ref._decl

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        if lookup_layer(attr) is None:
            raise UnknownLayerError(f"unknown layer '{attr}'",
                                    hint=did_you_mean(attr, layer_names()))
        return partial(self.layer, attr)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(layer_names()))

    def train(self, settings: Mapping[str, Any] | None = None, **kwargs: Any) -> Network:
        """Training settings, as in a spec's train section: `net.train(epochs=10, ...)`; the
        optimizer's arguments may sit beside it: `net.train(optimizer="adam",
        learning_rate=0.01)` or `net.train(optimizer={"name": "adam", "learning_rate": 0.01})`.
        """
        self._train = {**dict(settings or {}), **kwargs}
        self._train_where = _caller()
        return self

    def output(self, *layers: Layer | str) -> Network:
        """Make these layers the network's outputs (default: the last layer declared)."""
        self._outputs = list(layers)
        return self

    # ------------------------------------------------------------ building

    def build(self) -> Graph:
        """Check everything and return the graph; raises CnncError at the declaring line."""
        sources: dict[str, str | None] = {}
        for decl in self._decls:
            decl.span = self._span(self._where.get(id(decl)), sources)
        outputs = None
        if self._outputs is not None:
            outputs = [self._ref(o) for o in self._outputs]
        graph = lower(self.name, self._decls, outputs=outputs)
        if self._train is not None:
            try:
                # optimizer="adam", learning_rate=0.01: the flat form Python users write
                settings = optimizer_keywords(self._train)
                graph = graph.replace(train=parse_train_config(settings))
            except CnncError as err:
                raise err.with_context(span=self._span(self._train_where, sources)) from None
        return graph

    @staticmethod
    def _span(where: tuple[str, int, int] | None,
              sources: dict[str, str | None]) -> Span | None:
        if where is None:
            return None
        file, line, column = where
        if file not in sources:
            lines = linecache.getlines(file)
            sources[file] = "".join(lines) if lines else None
        return Span(file, line, column, source=sources[file])

    def __repr__(self) -> str:
        n = len(self._decls)
        return f"<Network {self.name!r}: {n} layer{'' if n == 1 else 's'}>"


__all__ = ["Layer", "Network", "UnknownLayerError"]
