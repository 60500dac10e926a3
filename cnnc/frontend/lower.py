"""Lowering shared by every front end: layer declarations in, one checked layer graph out.

The DSL, YAML and Python front ends each turn their input into a list of `LayerDecl` (what the
user wrote, with where they wrote it) and call `lower`. Everything after that is common: op and
argument checking, Keras-style auto names, reference resolution, cycle detection, topological
order, shape inference and parameter creation. So the three front ends cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from cnnc.errors import Span, SpecError, did_you_mean
from cnnc.ir.args import ArgError, Attrs
from cnnc.ir.graph import Graph, Node, StateSpec, infer_node, param_specs
from cnnc.ir.ops import OpDef, Shape, layer_names, lookup_layer

PREVIOUS = None  # LayerDecl.inputs value meaning "the layer declared just before"


@dataclass
class LayerDecl:
    """One layer as written: op name, positional and keyword arguments, name, inputs, location.

    `inputs` None means the previous layer (a chain); a list names layers. `arg_spans` and
    `arg_paths` locate individual arguments (keys are argument names, or '#<i>' for the i-th
    positional value) so that a bad value is reported where it was written.
    """

    op: str
    positional: Sequence[Any] = ()
    keywords: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    inputs: Sequence[str] | None = PREVIOUS
    span: Span | None = None
    path: str | None = None
    arg_spans: Mapping[str, Span] = field(default_factory=dict)
    arg_paths: Mapping[str, str] = field(default_factory=dict)
    name_span: Span | None = None
    input_spans: Sequence[Span | None] = ()


def keras_auto_name(op: OpDef) -> str:
    """Keras names layers after their class in snake case: MaxPooling2D -> max_pooling2d."""
    cls = op.keras_name or op.name
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", cls)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    return s.lower().replace("2_d", "2d").replace("1_d", "1d").replace("3_d", "3d")


def _arg_error(decl: LayerDecl, key: str, err: Exception, op: OpDef) -> SpecError:
    span = decl.arg_spans.get(key) or decl.span
    path = decl.arg_paths.get(key) or (f"{decl.path}.{key}" if decl.path and not
                                       key.startswith("#") else decl.path)
    msg = str(err)
    return SpecError(msg, span=span, path=None if span else path)


def resolve_args(decl: LayerDecl, op: OpDef) -> Attrs:
    """Positional values and bare words mapped onto the op's arguments, then checked."""
    given: dict[str, Any] = {}
    where: dict[str, str] = {}  # arg name -> key in arg_spans/arg_paths
    slots = [a for a in op.args if a.positional]
    for i, value in enumerate(decl.positional):
        key = f"#{i}"
        target = None
        if isinstance(value, str):
            for a in op.args:
                if a.words and value.lower() in a.words and a.name not in given:
                    target = a
                    break
        if target is None:
            while slots and slots[0].name in given:
                slots.pop(0)
            if not slots:
                why = (f"'{value}' is not a value {op.name} takes as a bare word"
                       if isinstance(value, str) else f"too many positional arguments for {op.name}")
                raise _arg_error(decl, key, ArgError(why), op)
            target = slots.pop(0)
        given[target.name] = value
        where[target.name] = key
    for k, value in decl.keywords.items():
        if k in given:
            raise _arg_error(decl, k, ArgError(f"argument '{k}' given twice"), op)
        given[k] = value
        where[k] = k
    try:
        return op.check_attrs(given)
    except ArgError as err:
        # Point at the argument the message names, if we can tell which.
        msg = str(err)
        key = next((where[k] for k in given if f"{k}=" in msg or f"'{k}'" in msg), None)
        if key is None:
            m = re.search(r"unknown argument '([^']+)'", msg)
            key = m.group(1) if m else ""
        raise _arg_error(decl, key, err, op) from None


def lower(
    name: str,
    decls: Sequence[LayerDecl],
    *,
    outputs: Sequence[str] | None = None,
    output_spans: Sequence[Span | None] = (),
    train: Any = None,
    file: str | None = None,
) -> Graph:
    """Build the layer graph; raises CnncError located at the offending declaration."""
    if not decls:
        raise SpecError("the network is empty: it needs an input and at least one layer",
                        file=file)
    ops: list[OpDef] = []
    for d in decls:
        op = lookup_layer(d.op)
        if op is None:
            raise SpecError(f"unknown layer '{d.op}'", span=d.span, path=d.path,
                            hint=did_you_mean(d.op, layer_names()))
        ops.append(op)

    # Names: explicit ones first (so auto names never take them), then Keras-style auto names.
    names: list[str] = [""] * len(decls)
    taken: dict[str, int] = {}
    for i, d in enumerate(decls):
        if d.name is not None:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", d.name):
                raise SpecError(f"invalid layer name '{d.name}': use letters, digits, '_', '.' "
                                "or '-', starting with a letter", span=d.name_span or d.span,
                                path=f"{d.path}.name" if d.path else None)
            if d.name in taken:
                first = decls[taken[d.name]]
                where = (f" (first defined at {first.span.location()})" if first.span
                         else (f" (first defined at {first.path})" if first.path else ""))
                raise SpecError(f"duplicate layer name '{d.name}'{where}",
                                span=d.name_span or d.span,
                                path=f"{d.path}.name" if d.path else None)
            taken[d.name] = i
            names[i] = d.name
    counters: dict[str, int] = {}
    for i, d in enumerate(decls):
        if d.name is None:
            base = keras_auto_name(ops[i])
            while True:
                n = counters.get(base, 0)
                counters[base] = n + 1
                candidate = base if n == 0 else f"{base}_{n}"
                if candidate not in taken:
                    break
            taken[candidate] = i
            names[i] = candidate

    # Inputs: explicit references or the previous declaration.
    wired: list[list[int]] = []
    for i, d in enumerate(decls):
        op = ops[i]
        if op.name == "input":
            if d.inputs:
                raise SpecError(f"input layer '{names[i]}' cannot take inputs", span=d.span,
                                path=d.path)
            wired.append([])
            continue
        if d.inputs is PREVIOUS:
            if i == 0:
                raise SpecError(f"the first layer '{names[i]}' has no input: start the network "
                                "with an input layer (e.g. 'input 28x28x1')", span=d.span,
                                path=d.path)
            wired.append([i - 1])
            continue
        refs = []
        for j, ref in enumerate(d.inputs):
            if ref not in taken:
                span = d.input_spans[j] if j < len(d.input_spans) else None
                raise SpecError(f"unknown layer '{ref}' in the inputs of '{names[i]}'",
                                span=span or d.span,
                                path=f"{d.path}.inputs[{j}]" if d.path else None,
                                hint=did_you_mean(ref, taken))
            refs.append(taken[ref])
        wired.append(refs)

    order = _topological_order(names, wired, decls)

    # Shapes, parameters and nodes in topological order.
    nodes: list[Node] = []
    state: list[StateSpec] = []
    shapes: dict[str, Shape] = {}
    for i in order:
        d, op = decls[i], ops[i]
        attrs = resolve_args(d, op)
        lo, hi = op.arity
        n_in = len(wired[i])
        if n_in < lo or (hi is not None and n_in > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}"
            raise SpecError(f"{names[i]}: {op.name} takes {want} inputs, got {n_in}",
                            span=d.span, path=f"{d.path}.inputs" if d.path else None)
        inputs = tuple(names[j] for j in wired[i])
        node = Node(name=names[i], op=op.name, inputs=inputs, attrs=attrs, span=d.span,
                    path=d.path)
        in_shapes = [shapes[v] for v in inputs]
        out = infer_node(node, in_shapes)
        params = []
        for p in param_specs(node, in_shapes):
            pname = f"{names[i]}/{p.suffix}"
            state.append(StateSpec(pname, p.shape, p.init, p.trainable, "param", p.fan))
            params.append(pname)
        node = Node(name=node.name, op=node.op, inputs=inputs, attrs=attrs, params=tuple(params),
                    shape=out, span=d.span, path=d.path)
        shapes[node.name] = out
        nodes.append(node)

    if not any(n.op == "input" for n in nodes):
        raise SpecError("the network has no input layer (e.g. 'input 28x28x1')", file=file,
                        span=decls[0].span, path=decls[0].path)
    if outputs:
        for j, o in enumerate(outputs):
            if o not in taken:
                span = output_spans[j] if j < len(output_spans) else None
                raise SpecError(f"unknown layer '{o}' named as an output", span=span,
                                path=f"outputs[{j}]" if span is None else None,
                                hint=did_you_mean(o, taken), file=file)
        outs = tuple(outputs)
    else:
        outs = (names[len(decls) - 1],)
    if all(n.op == "input" for n in nodes):
        raise SpecError("the network is empty: it has an input but no layers", file=file,
                        span=decls[0].span, path=decls[0].path)
    return Graph(name=name, nodes=tuple(nodes), outputs=outs, state=tuple(state), train=train)


def _topological_order(names: list[str], wired: list[list[int]],
                       decls: Sequence[LayerDecl]) -> list[int]:
    """Declaration order where possible; a reference to a later layer moves it earlier.

    A cycle is reported with its path (a -> b -> a) at the first layer on it.
    """
    state = [0] * len(names)  # 0 new, 1 visiting, 2 done
    order: list[int] = []

    def visit(i: int, stack: list[int]) -> None:
        if state[i] == 2:
            return
        if state[i] == 1:
            cycle = stack[stack.index(i):] + [i]
            d = decls[cycle[0]]
            raise SpecError("cycle in the layer graph: " + " -> ".join(names[k] for k in cycle),
                            span=d.span, path=d.path)
        state[i] = 1
        stack.append(i)
        for j in wired[i]:
            visit(j, stack)
        stack.pop()
        state[i] = 2
        order.append(i)

    for i in range(len(names)):
        visit(i, [])
    return order


__all__ = ["LayerDecl", "PREVIOUS", "keras_auto_name", "lower", "resolve_args"]
