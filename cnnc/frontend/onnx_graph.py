"""ONNX front end, stage 2: the model's graph as plain Python, checked and in dependency order.

Nodes become `OnnxNode`s with attributes as Python values; initialisers become arrays; graph
inputs get their declared shapes. The structure is checked the way lowering checks a spec:
every value defined once and before use, no cycle (reported with its path), a bounded size.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnc.frontend.onnx_file import OnnxFileError, TensorReader, checked_numel, dtype_name

MAX_NODES = 100_000
MAX_METADATA_BYTES = 1 << 20
DEFAULT_DOMAINS = ("", "ai.onnx")


class Subgraph:
    """An attribute holding a graph (If, Loop, Scan): never lowered, only named in errors."""

    def __repr__(self) -> str:
        return "<subgraph>"


@dataclass
class OnnxNode:
    index: int
    name: str
    op: str
    domain: str
    inputs: tuple[str, ...]  # '' marks an omitted optional input
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How messages name the node: its name, else its position and first output."""
        if self.name:
            return f"'{self.name}'"
        first = self.outputs[0] if self.outputs else "nothing"
        return f"#{self.index} (output '{first}')"


@dataclass
class GraphInput:
    name: str
    elem_type: int
    dims: tuple[int | str | None, ...] | None  # an int, a symbolic name, or None (unknown)


@dataclass
class OnnxGraph:
    name: str
    nodes: list[OnnxNode]  # in dependency order
    inputs: list[GraphInput]  # the real inputs (initialisers listed as inputs are left out)
    outputs: tuple[str, ...]
    constants: dict[str, np.ndarray]  # initialisers
    opset: int
    metadata: dict[str, str]
    file: str | None

    def consumers(self) -> dict[str, list[OnnxNode]]:
        out: dict[str, list[OnnxNode]] = {}
        for node in self.nodes:
            for v in node.inputs:
                if v:
                    out.setdefault(v, []).append(node)
        return out


def _attr_value(attr: Any, reader: TensorReader, what: str) -> Any:
    from onnx import AttributeProto as A

    kind = attr.type
    if kind == A.FLOAT:
        return float(attr.f)
    if kind == A.INT:
        return int(attr.i)
    if kind == A.STRING:
        return attr.s.decode("utf-8", "replace")
    if kind == A.TENSOR:
        return reader.array(attr.t, f"{what} attribute '{attr.name}'")
    if kind == A.FLOATS:
        return tuple(float(v) for v in attr.floats)
    if kind == A.INTS:
        return tuple(int(v) for v in attr.ints)
    if kind == A.STRINGS:
        return tuple(s.decode("utf-8", "replace") for s in attr.strings)
    if kind in (A.GRAPH, A.GRAPHS):
        return Subgraph()
    return f"<{A.AttributeType.Name(kind).lower()} attribute>"


def _opset(model: Any) -> int:
    versions = [o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    return int(versions[0]) if versions else 1


def _input_dims(value_info: Any) -> tuple[int, tuple[int | str | None, ...] | None]:
    t = value_info.type
    if not t.HasField("tensor_type"):
        return -1, None
    tt = t.tensor_type
    if not tt.HasField("shape"):
        return tt.elem_type, None
    dims: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tt.elem_type, tuple(dims)


def read_graph(model: Any, file: str | None) -> OnnxGraph:
    """The model's main graph, checked (see the module doc); OnnxFileError on any problem."""
    model = inline_functions(model, file)
    g = model.graph
    if len(g.node) > MAX_NODES:
        raise OnnxFileError(f"the graph has {len(g.node):,} nodes, more than cnnc reads "
                            f"({MAX_NODES:,})", file=file)
    reader = TensorReader(Path(file).parent if file else None, file)
    constants: dict[str, np.ndarray] = {}
    for t in g.initializer:
        if t.name in constants:
            raise OnnxFileError(f"initialiser '{t.name}' is defined twice", file=file)
        constants[t.name] = reader.array(t, f"initialiser '{t.name}'")
    for st in g.sparse_initializer:
        raise OnnxFileError(f"sparse initialiser '{st.values.name}' is not supported", file=file)

    inputs = []
    for vi in g.input:
        if vi.name in constants:
            continue  # old exporters list initialisers as inputs too
        elem, dims = _input_dims(vi)
        if dims is not None:
            fixed = [d for d in dims if isinstance(d, int)]
            checked_numel(fixed, f"input '{vi.name}'")
        inputs.append(GraphInput(vi.name, elem, dims))

    nodes = []
    for i, n in enumerate(g.node):
        node = OnnxNode(i, n.name, n.op_type, n.domain, tuple(n.input), tuple(n.output))
        for a in n.attribute:
            node.attrs[a.name] = _attr_value(a, reader, f"node {node.label}")
        nodes.append(node)
    outputs = tuple(o.name for o in g.output)
    graph = OnnxGraph(
        name=g.name, nodes=_dependency_order(nodes, inputs, constants, outputs, file),
        inputs=inputs, outputs=outputs, constants=constants, opset=_opset(model),
        metadata=_metadata(model, file), file=file,
    )
    return graph


def inline_functions(model: Any, file: str | None) -> Any:
    """The model with its local functions (ModelProto.functions, which exporters may write for
    a module) inlined into the graph; refused when they call themselves or would expand past
    MAX_NODES nodes (counted before anything is expanded)."""
    if not model.functions:
        return model
    bodies = {(f.domain, f.name): f for f in model.functions}
    sizes: dict[tuple[str, str], int] = {}

    def size(key: tuple[str, str], calling: tuple[tuple[str, str], ...]) -> int:
        if key in calling:
            chain = " -> ".join(f"{d}.{n}" if d else n for d, n in (*calling, key))
            raise OnnxFileError(f"the model's local functions call themselves: {chain}",
                                file=file)
        if key not in sizes:
            total = 0
            for n in bodies[key].node:
                inner = (n.domain, n.op_type)
                total += size(inner, (*calling, key)) if inner in bodies else 1
                if total > MAX_NODES:
                    break
            sizes[key] = total
        return sizes[key]

    expanded = 0
    for n in model.graph.node:
        key = (n.domain, n.op_type)
        expanded += size(key, ()) if key in bodies else 1
        if expanded > MAX_NODES:
            raise OnnxFileError(f"the graph's local functions expand to more than {MAX_NODES:,}"
                                " nodes", file=file)
    from onnx import inliner

    try:
        return inliner.inline_local_functions(model)
    except Exception as err:  # noqa: BLE001 - the inliner's errors are not one type
        raise OnnxFileError(f"the model's local functions cannot be inlined: {err}",
                            file=file) from None


def _metadata(model: Any, file: str | None) -> dict[str, str]:
    out = {}
    total = 0
    for p in model.metadata_props:
        total += len(p.key) + len(p.value)
        if total > MAX_METADATA_BYTES:
            raise OnnxFileError("the model's metadata is larger than cnnc reads", file=file)
        out[p.key] = p.value
    return out


def _dependency_order(nodes: list[OnnxNode], inputs: list[GraphInput],
                      constants: dict[str, np.ndarray], outputs: tuple[str, ...],
                      file: str | None) -> list[OnnxNode]:
    """The nodes so that each comes after the producers of its inputs (file order where it
    already is); OnnxFileError for a value defined twice or never, or a cycle."""
    defined = {i.name for i in inputs} | set(constants)
    producer: dict[str, OnnxNode] = {}
    for node in nodes:
        for v in node.outputs:
            if not v:
                continue
            if v in defined or v in producer:
                first = producer[v].label if v in producer else "a graph input or initialiser"
                raise OnnxFileError(f"value '{v}' is defined twice: by node {node.label} and by "
                                    f"{first}", file=file)
            producer[v] = node
    missing = [(node, v) for node in nodes for v in node.inputs
               if v and v not in defined and v not in producer]
    if missing:
        node, v = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise OnnxFileError(f"node {node.label} reads '{v}', which nothing defines{more}",
                            file=file)
    for o in outputs:
        if o not in defined and o not in producer:
            raise OnnxFileError(f"graph output '{o}' is not defined by any node", file=file)

    waiting = {}
    readers: dict[int, list[OnnxNode]] = {}
    for node in nodes:
        deps = {producer[v].index for v in node.inputs if v in producer}
        waiting[node.index] = len(deps)
        for d in deps:
            readers.setdefault(d, []).append(node)
    ready = [n.index for n in nodes if waiting[n.index] == 0]
    heapq.heapify(ready)
    by_index = {n.index: n for n in nodes}
    order: list[OnnxNode] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(by_index[i])
        for r in readers.get(i, ()):
            waiting[r.index] -= 1
            if waiting[r.index] == 0:
                heapq.heappush(ready, r.index)
    if len(order) < len(nodes):
        left = [n for n in nodes if waiting[n.index] > 0]
        raise OnnxFileError("the graph has a cycle: " + _cycle(left, producer), file=file)
    return order


def _cycle(left: list[OnnxNode], producer: dict[str, OnnxNode]) -> str:
    """One cycle among the nodes Kahn's algorithm could not order, as 'a -> b -> a'."""
    in_left = {n.index for n in left}
    node = left[0]
    seen: list[int] = []
    while node.index not in seen:
        seen.append(node.index)
        node = next(producer[v] for v in node.inputs
                    if v in producer and producer[v].index in in_left)
    loop = list(reversed(seen[seen.index(node.index):]))  # in the direction data flows
    first = loop.index(min(loop))  # start at the node the file lists first
    loop = loop[first:] + loop[:first]
    by_index = {n.index: n for n in left}
    names = [by_index[i].label for i in loop]
    return " -> ".join([*names, names[0]])


def layer_args_metadata(graph: OnnxGraph, key: str) -> dict[str, dict[str, Any]]:
    """A JSON mapping of layer name -> {argument: value} from the model's metadata, or {}."""
    text = graph.metadata.get(key)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise OnnxFileError(f"metadata '{key}' is not valid JSON", file=graph.file) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise OnnxFileError(f"metadata '{key}' is not a mapping of mappings", file=graph.file)
    return data


__all__ = ["GraphInput", "OnnxGraph", "OnnxNode", "Subgraph", "dtype_name", "read_graph"]
