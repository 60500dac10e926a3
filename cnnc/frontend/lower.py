"""Lowering shared by every front end: layer declarations in, one checked layer graph out.

The DSL, YAML and Python front ends each turn their input into a list of `LayerDecl` (decl.py:
what the user wrote, with where they wrote it) and call `lower`. Everything after that is common: op and
argument checking, Keras-style auto names, reference resolution, cycle detection, topological
order, expansion of layers that are special cases of another op (`OpDef.expand`), shape
inference and parameter creation. So the three front ends cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cnnc.errors import ShapeError, Span, SpecError, did_you_mean
from cnnc.frontend.arguments import plural, resolve_args
from cnnc.frontend.decl import PREVIOUS, LayerDecl
from cnnc.input_limits import (
    MAX_LAYERS,
    MAX_PARAMETER_BYTES,
    MAX_TENSOR_BYTES,
    count_text,
    size_text,
)
from cnnc.ir.graph import Graph, Node, StateSpec, infer_node, param_specs
from cnnc.ir.ops import OPS, OpDef, Shape, layer_names, lookup_layer

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.\-]*"
# A shape written as one word, 28x28x1: the DSL's DIMS token, accepted by YAML and Python too.
DIMS = re.compile(r"[0-9]+(x[0-9]+)+")
# The DSL's keywords: a layer named so could not be written back out as DSL.
RESERVED_NAMES = frozenset({"network", "repeat", "train", "output", "outputs"})


def dims_value(text: str) -> tuple[int, ...] | None:
    """'28x28x1' as (28, 28, 1); None for any other text."""
    return tuple(int(p) for p in text.split("x")) if DIMS.fullmatch(text) else None


def default_network_name(file: str | None) -> str:
    """The name of a network whose spec gives none: its file's stem, else 'network'."""
    return Path(file).stem if file else "network"


def keras_auto_name(op: OpDef) -> str:
    """Keras names layers after their class in snake case: MaxPooling2D -> max_pooling2d."""
    cls = op.keras_name or op.name
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", cls)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    return s.lower().replace("2_d", "2d").replace("1_d", "1d").replace("3_d", "3d")


def assign_names(ops: Sequence[OpDef], given: Sequence[str | None]) -> list[str]:
    """Given names kept; the others get Keras-style auto names in declaration order.

    conv2d, conv2d_1, conv2d_2, ...: each op's counter skips names already taken, so an auto
    name never collides with a given one. The writers use this too, to leave out every name that
    lowering would give back anyway.
    """
    taken = {n for n in given if n is not None}
    counters: dict[str, int] = {}
    names: list[str] = []
    for op, name in zip(ops, given):
        if name is None:
            base = keras_auto_name(op)
            while True:
                n = counters.get(base, 0)
                counters[base] = n + 1
                name = base if n == 0 else f"{base}_{n}"
                if name not in taken:
                    break
            taken.add(name)
        names.append(name)
    return names


def lower(
    name: str,
    decls: Sequence[LayerDecl],
    *,
    outputs: Sequence[str | LayerDecl] | None = None,
    output_spans: Sequence[Span | None] = (),
    output_paths: Sequence[str | None] = (),
    train: Any = None,
    file: str | None = None,
) -> Graph:
    """Build the layer graph; raises CnncError located at the offending declaration.

    `outputs` names the graph's outputs (default: the last declaration), located for messages
    by `output_spans` (text) or `output_paths` (key paths). `train` is stored on the graph.
    """
    if not decls:
        raise SpecError("the network is empty: it needs an input and at least one layer",
                        file=file)
    if len(decls) > MAX_LAYERS:
        raise SpecError(f"the network has {len(decls):,} layers, more than the "
                        f"{MAX_LAYERS:,} cnnc compiles", file=file)
    ops: list[OpDef] = []
    for d in decls:
        op = lookup_layer(d.op)
        if op is None:
            raise SpecError(f"unknown layer '{d.op}'", span=d.span, path=d.path, file=file,
                            hint=did_you_mean(d.op, layer_names()))
        ops.append(op)

    names = _names(decls, ops)
    wired = _wire(decls, ops, names)
    order = _topological_order(names, wired, decls)

    # Shapes, parameters and nodes in topological order.
    nodes: list[Node] = []
    state: list[StateSpec] = []
    shapes: dict[str, Shape] = {}
    total_params = 0
    for i in order:
        d, op = decls[i], ops[i]
        attrs = resolve_args(d, op, names[i])
        if op.expand is not None:  # a special case of another op: build that op's node
            target, given = op.expand(attrs)
            op = OPS[target]
            attrs = op.check_attrs(given)
        lo, hi = op.arity
        n_in = len(wired[i])
        if n_in < lo or (hi is not None and n_in > hi):
            want = plural(lo, "input") if lo == hi else f"at least {plural(lo, 'input')}"
            raise SpecError(f"{names[i]}: {op.name} takes {want}, got {n_in}",
                            span=d.span, path=f"{d.path}.inputs" if d.path else None)
        inputs = tuple(names[j] for j in wired[i])
        node = Node(name=names[i], op=op.name, inputs=inputs, attrs=attrs, span=d.span,
                    path=d.path)
        in_shapes = [shapes[v] for v in inputs]
        out = infer_node(node, in_shapes)  # first: the parameter rules assume valid shapes
        _check_size(node, "output", out[1:], d)
        params = []
        for p in param_specs(node, in_shapes):
            pname = f"{names[i]}/{p.suffix}"
            _check_size(node, p.suffix, p.shape, d)
            total_params += math.prod(p.shape)
            state.append(StateSpec(pname, p.shape, p.init, p.trainable, "param", p.fan))
            params.append(pname)
        node = replace(node, params=tuple(params), shape=out)
        shapes[node.name] = out
        nodes.append(node)
        if total_params * FLOAT32 > MAX_PARAMETER_BYTES:
            raise ShapeError(
                f"{node.name}: the network has {count_text(total_params)} parameters up to "
                f"here ({size_text(total_params * FLOAT32)} as float32), more than any device "
                f"holds; cnnc refuses networks over {size_text(MAX_PARAMETER_BYTES)}",
                span=d.span, path=d.path)

    if not any(n.op == "input" for n in nodes):
        raise SpecError("the network has no input layer (e.g. 'input 28x28x1')", file=file,
                        span=decls[0].span, path=decls[0].path)
    outs = _outputs(outputs, decls, names, output_spans, output_paths, file)
    if all(n.op == "input" for n in nodes):
        raise SpecError("the network is empty: it has an input but no layers", file=file,
                        span=decls[0].span, path=decls[0].path)
    return Graph(name=name, nodes=tuple(nodes), outputs=outs, state=tuple(state), train=train)


FLOAT32 = 4  # bytes per value: the sizes below are the least a tensor takes on any backend


def _check_size(node: Node, what: str, shape: Sequence[int | None], d: LayerDecl) -> None:
    """Refuse at lowering a tensor no device could hold (limits.MAX_TENSOR_BYTES), with its
    figures, before anything tries to allocate it; `shape` is per example for outputs."""
    dims = [int(x) for x in shape if x is not None]
    values = math.prod(dims)
    if values * FLOAT32 > MAX_TENSOR_BYTES:
        kind = "one example's output" if what == "output" else f"its {what}"
        raise ShapeError(
            f"{node.name}: {kind} of shape {'x'.join(map(str, dims))} holds "
            f"{count_text(values)} values ({size_text(values * FLOAT32)} as float32), more "
            f"than any device holds; cnnc refuses tensors over {size_text(MAX_TENSOR_BYTES)}",
            span=d.span, path=d.path)


def _wire(decls: Sequence[LayerDecl], ops: Sequence[OpDef], names: list[str]) -> list[list[int]]:
    """Each declaration's inputs as indices: its explicit references, or the one before it."""
    taken = {n: i for i, n in enumerate(names)}
    index = {id(d): i for i, d in enumerate(decls)}
    wired: list[list[int]] = []
    for i, d in enumerate(decls):
        if ops[i].name == "input":
            if d.inputs:
                raise SpecError(f"input layer '{names[i]}' cannot take inputs", span=d.span,
                                path=d.path)
            wired.append([])
        elif d.inputs is PREVIOUS:
            if i == 0:
                raise SpecError(f"the first layer '{names[i]}' has no input: start the network "
                                "with an input layer (e.g. 'input 28x28x1')", span=d.span,
                                path=d.path)
            wired.append([i - 1])
        else:
            wired.append([_reference(d, j, ref, names[i], taken, index)
                          for j, ref in enumerate(d.inputs)])
    return wired


def _reference(d: LayerDecl, j: int, ref: str | LayerDecl, label: str, taken: dict[str, int],
               index: dict[int, int]) -> int:
    """The index of the layer that input `j` of `d` (named `label`) refers to."""
    if isinstance(ref, LayerDecl):
        if id(ref) not in index:
            raise SpecError(f"an input of '{label}' is a layer of another network",
                            span=d.span, path=d.path)
        return index[id(ref)]
    if ref not in taken:
        span = d.input_spans[j] if j < len(d.input_spans) else None
        raise SpecError(f"unknown layer '{ref}' in the inputs of '{label}'",
                        span=span or d.span, path=f"{d.path}.inputs[{j}]" if d.path else None,
                        hint=did_you_mean(ref, taken))
    return taken[ref]


def _outputs(outputs: Sequence[str | LayerDecl] | None, decls: Sequence[LayerDecl],
             names: list[str], spans: Sequence[Span | None], paths: Sequence[str | None],
             file: str | None) -> tuple[str, ...]:
    """The outputs by name, each checked (default: the last declaration)."""
    if not outputs:
        return (names[len(decls) - 1],)
    index = {id(d): i for i, d in enumerate(decls)}
    found = [names[index[id(o)]] if isinstance(o, LayerDecl) and id(o) in index else o
             for o in outputs]
    for j, o in enumerate(found):
        if not isinstance(o, str):
            raise SpecError("an output is a layer of another network", file=file)
        if o not in names:
            span = spans[j] if j < len(spans) else None
            path = paths[j] if j < len(paths) else None
            raise SpecError(f"unknown layer '{o}' named as an output", span=span,
                            path=path if path or span else f"outputs[{j}]",
                            hint=did_you_mean(o, names), file=file)
    return tuple(found)


def _names(decls: Sequence[LayerDecl], ops: Sequence[OpDef]) -> list[str]:
    """Check the given names (form, uniqueness), then complete them with auto names."""
    first: dict[str, LayerDecl] = {}
    for d in decls:
        if d.name is None:
            continue
        where = d.name_span or d.span
        path = f"{d.path}.name" if d.path else None
        if not isinstance(d.name, str) or not re.fullmatch(NAME_PATTERN, d.name):
            raise SpecError(f"invalid layer name {d.name!r}: use letters, digits, '_', '.' or "
                            "'-', starting with a letter or '_'", span=where, path=path)
        if d.name in RESERVED_NAMES:
            raise SpecError(f"'{d.name}' is a reserved word and cannot name a layer",
                            span=where, path=path)
        if d.name in first:
            prior = first[d.name]
            at = ((prior.name_span or prior.span).location() if (prior.name_span or prior.span)
                  else prior.path)
            raise SpecError(f"duplicate layer name '{d.name}'"
                            + (f" (first defined at {at})" if at else ""), span=where, path=path)
        first[d.name] = d
    return assign_names(ops, [d.name for d in decls])


def _topological_order(names: list[str], wired: list[list[int]],
                       decls: Sequence[LayerDecl]) -> list[int]:
    """Declaration order where possible; a reference to a later layer moves it earlier.

    A cycle is reported with its path (a -> b -> a) at the first layer on it.
    """
    state = [0] * len(names)  # 0 new, 1 visiting, 2 done
    order: list[int] = []

    # Iterative depth-first search: a long chain must not hit Python's recursion limit.
    for root in range(len(names)):
        if state[root]:
            continue
        stack: list[tuple[int, int]] = [(root, 0)]
        path = [root]
        state[root] = 1
        while stack:
            i, k = stack[-1]
            if k < len(wired[i]):
                stack[-1] = (i, k + 1)
                j = wired[i][k]
                if state[j] == 1:
                    # Listed as the data flows: each layer feeds the next.
                    cycle = [j] + path[path.index(j):][::-1]
                    d = decls[cycle[0]]
                    raise SpecError("cycle in the layer graph: "
                                    + " -> ".join(names[c] for c in cycle),
                                    span=d.span, path=d.path)
                if state[j] == 0:
                    state[j] = 1
                    stack.append((j, 0))
                    path.append(j)
                continue
            stack.pop()
            path.pop()
            state[i] = 2
            order.append(i)
    return order


__all__ = [
    "DIMS",
    "NAME_PATTERN",
    "PREVIOUS",
    "RESERVED_NAMES",
    "LayerDecl",
    "assign_names",
    "default_network_name",
    "dims_value",
    "keras_auto_name",
    "lower",
]
