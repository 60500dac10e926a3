"""The graph every stage shares: frozen nodes in topological order, state tensors, outputs.

A node produces one value named after the node (update ops produce none). Its `inputs` name
values: other nodes' outputs or state tensors (parameters, moving statistics, optimizer slots).
Layer nodes list their own parameters separately in `params`, in the order their op's parameter
rule gives, so that a backend's implementation receives ``inputs + params``.

Graphs are never changed in place: passes build new ones (`Graph.replace`, `with_nodes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from math import prod
from typing import Any

from cnnc.errors import CnncError, ShapeError, Span, SpecError
from cnnc.ir.args import ArgError, Attrs
from cnnc.ir.ops import OPS, OpDef, ParamSpec, Shape
from cnnc.ir.train_config import TrainConfig


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...] = ()
    attrs: Attrs = field(default_factory=Attrs)
    params: tuple[str, ...] = ()
    shape: Shape | None = None  # filled by shape inference; None for update ops
    span: Span | None = field(default=None, compare=False)
    path: str | None = field(default=None, compare=False)  # YAML key path of the layer

    @property
    def opdef(self) -> OpDef:
        return OPS[self.op]

    @property
    def operands(self) -> tuple[str, ...]:
        """What an implementation receives, in order: data inputs, then parameters."""
        return self.inputs + self.params

    def located(self, err: CnncError) -> CnncError:
        """Attach this node's place in the spec to an error, prefixing the node's name."""
        if not err.message.startswith(f"{self.name}:"):
            err.message = f"{self.name}: {err.message}"
        return err.with_context(span=self.span, path=self.path)


@dataclass(frozen=True)
class StateSpec:
    """A tensor that persists across runs: a parameter, a moving statistic, an optimizer slot."""

    name: str
    shape: tuple[int, ...]
    init: str = "zeros"  # 'glorot_uniform' | 'zeros' | 'ones'
    trainable: bool = False
    role: str = "param"  # 'param' (in get_weights) | 'slot' (optimizer state)
    fan: tuple[int, int] | None = None

    @property
    def size(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True)
class Graph:
    name: str
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    state: tuple[StateSpec, ...] = ()
    train: TrainConfig | None = None  # the spec's training settings, if it has any
    # Weights that come with the network (an imported ONNX model's initialisers), by state name:
    # compiling starts from them instead of the initialisers. Not part of graph equality.
    given_weights: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    # ------------------------------------------------------------ lookups

    @cached_property
    def node_map(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def state_map(self) -> dict[str, StateSpec]:
        return {s.name: s for s in self.state}

    def node(self, name: str) -> Node:
        return self.node_map[name]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes if n.op == "input")

    def shape_of(self, value: str) -> Shape:
        if value in self.node_map:
            shape = self.node_map[value].shape
            if shape is None:
                raise KeyError(f"{value} produces no value")
            return shape
        return self.state_map[value].shape

    def concrete_shape(self, value: str, batch: int) -> tuple[int, ...]:
        """The shape of a value or state tensor with its batch dimension (None) set to `batch`:
        what a backend allocates, feeds or checks when it runs the graph at that batch size."""
        return tuple(batch if d is None else d for d in self.shape_of(value))

    def dtype_of(self, value: str) -> str:
        node = self.node_map.get(value)
        if node is not None and node.op == "input":
            return node.attrs["dtype"]
        return node.opdef.dtype if node is not None else "float32"

    @cached_property
    def consumers(self) -> dict[str, tuple[str, ...]]:
        """For each value, the names of the nodes that read it, in graph order."""
        out: dict[str, list[str]] = {}
        for n in self.nodes:
            for v in n.operands:
                out.setdefault(v, []).append(n.name)
        return {k: tuple(v) for k, v in out.items()}

    def params_of(self, node: Node) -> tuple[StateSpec, ...]:
        return tuple(self.state_map[p] for p in node.params)

    @property
    def weights(self) -> tuple[StateSpec, ...]:
        """What get_weights() returns: parameters and moving statistics, not optimizer slots."""
        return tuple(s for s in self.state if s.role == "param")

    def param_count(self) -> int:
        return sum(s.size for s in self.weights)

    # ------------------------------------------------------------ building new graphs

    def replace(self, **changes: Any) -> Graph:
        return replace(self, **changes)

    def with_nodes(self, nodes: Iterable[Node], **changes: Any) -> Graph:
        return replace(self, nodes=tuple(nodes), **changes)


# ---------------------------------------------------------------- shape inference


def infer_node(node: Node, in_shapes: Sequence[Shape]) -> Shape | None:
    """The output shape of one node; errors are located at the node."""
    op = node.opdef
    lo, hi = op.arity
    n = len(node.inputs)
    if n < lo or (hi is not None and n > hi):
        want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
        raise node.located(ShapeError(f"{op.name} takes {want} inputs, got {n}"))
    try:
        return op.infer(node.attrs, tuple(in_shapes))
    except CnncError as err:
        raise node.located(err) from None


def param_specs(node: Node, in_shapes: Sequence[Shape]) -> tuple[ParamSpec, ...]:
    return node.opdef.params(node.attrs, tuple(in_shapes))


def infer_shapes(graph: Graph) -> Graph:
    """A copy of `graph` with every node's output shape computed from its inputs'."""
    shapes: dict[str, Shape] = {s.name: s.shape for s in graph.state}
    nodes = []
    for node in graph.nodes:
        try:
            in_shapes = [shapes[v] for v in node.inputs]
        except KeyError as err:
            raise node.located(SpecError(f"input '{err.args[0]}' is not defined before it is used"))
        out = infer_node(node, in_shapes)
        if out is not None:
            shapes[node.name] = out
        nodes.append(replace(node, shape=out) if out != node.shape else node)
    return graph.with_nodes(nodes)


# ---------------------------------------------------------------- verification


class VerifyError(CnncError):
    """A graph that breaks an invariant: a bug in a pass, never a user's mistake."""


def verify(graph: Graph, *, after: str | None = None) -> None:
    """Check the invariants every pass must keep. `after` names the pass, for the message.

    Unique names; inputs defined before use; params are state; arities and attributes valid;
    stored shapes equal re-inferred shapes; outputs exist; nothing reads an update op.
    """
    where = f" after pass '{after}'" if after else ""

    def fail(msg: str) -> None:
        raise VerifyError(f"graph '{graph.name}' is invalid{where}: {msg}")

    seen: dict[str, Shape] = {}
    state = graph.state_map
    if len(state) != len(graph.state):
        fail("duplicate state names")
    no_value: set[str] = set()
    for node in graph.nodes:
        if node.op not in OPS:
            fail(f"node '{node.name}' has unknown op '{node.op}'")
        if node.name in seen or node.name in no_value or node.name in state:
            fail(f"name '{node.name}' is defined twice")
        for v in node.operands:
            if v in no_value:
                fail(f"node '{node.name}' reads '{v}', an update that produces no value")
            if v not in seen and v not in state:
                fail(f"node '{node.name}' reads '{v}' before it is defined")
        for p in node.params:
            if p not in state:
                fail(f"node '{node.name}' has parameter '{p}' that is not state")
        try:
            node.opdef.check_attrs(dict(node.attrs))
        except ArgError as err:
            fail(f"node '{node.name}' has bad attributes: {err}")
        in_shapes = [seen[v] if v in seen else state[v].shape for v in node.inputs]
        try:
            out = infer_node(node, in_shapes)
        except CnncError as err:
            fail(f"node '{node.name}': {err.message}")
        if out != node.shape:
            fail(f"node '{node.name}' stores shape {node.shape}, inference gives {out}")
        if node.params:
            want = [s.shape for s in param_specs(node, in_shapes)]
            have = [state[p].shape for p in node.params]
            if want != have:
                fail(f"node '{node.name}' parameters have shapes {have}, the op wants {want}")
        if out is None:
            no_value.add(node.name)
        else:
            seen[node.name] = out
    for o in graph.outputs:
        if o not in seen and o not in state:
            fail(f"output '{o}' is not a value of the graph")
