"""Lowering shared by every front end: layer declarations in, one checked layer graph out.

The DSL, YAML and Python front ends each turn their input into a list of `LayerDecl` (what the
user wrote, with where they wrote it) and call `lower`. Everything after that is common: op and
argument checking, Keras-style auto names, reference resolution, cycle detection, topological
order, shape inference and parameter creation. So the three front ends cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnc.errors import Span, SpecError, did_you_mean
from cnnc.ir.args import ArgError, Attrs
from cnnc.ir.graph import Graph, Node, StateSpec, infer_node, param_specs
from cnnc.ir.ops import OpDef, Shape, layer_names, lookup_layer

PREVIOUS = None  # LayerDecl.inputs value meaning "the layer declared just before"

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.\-]*"
# The DSL's keywords: a layer named so could not be written back out as DSL.
RESERVED_NAMES = frozenset({"network", "repeat", "train", "output", "outputs"})


@dataclass(eq=False)
class LayerDecl:
    """One layer as written: op name, positional and keyword arguments, name, inputs, location.

    `inputs` None means the previous layer (a chain); a list names layers, each by its name or
    by its `LayerDecl` (the Python builder's handles, which may be unnamed until lowering).
    `arg_spans` and `arg_paths` locate individual argument values (keys are argument names, or
    '#<i>' for the i-th positional value) so that a bad value is reported where it was written;
    `key_spans` locate the keywords themselves (for unknown-argument errors).
    """

    op: str
    positional: Sequence[Any] = ()
    keywords: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    inputs: Sequence[str | LayerDecl] | None = PREVIOUS
    span: Span | None = None
    path: str | None = None
    arg_spans: Mapping[str, Span] = field(default_factory=dict)
    arg_paths: Mapping[str, str] = field(default_factory=dict)
    name_span: Span | None = None
    input_spans: Sequence[Span | None] = ()
    key_spans: Mapping[str, Span] = field(default_factory=dict)


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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _arg_error(decl: LayerDecl, label: str, key: str, message: str,
               hint: str | None = None, *, at_key: bool = False) -> SpecError:
    """An argument error located at the value (or keyword) as precisely as the front end knows.

    Key-path errors (YAML, dicts) are named by the path; text errors by the layer's name.
    """
    span = (decl.key_spans.get(key) if at_key else None) or decl.arg_spans.get(key) or decl.span
    path = decl.arg_paths.get(key)
    if path is None and decl.path is not None:
        path = decl.path if key.startswith("#") or not key else f"{decl.path}.{key}"
    if path is None:
        message = f"{label}: {message}"
    return SpecError(message, span=span, path=path, hint=hint)


def resolve_args(decl: LayerDecl, op: OpDef, label: str | None = None) -> Attrs:
    """Positional values and bare words mapped onto the op's arguments, then checked.

    A bare word (``relu``, ``same``) goes to the argument whose `words` contain it; other
    positional values fill the op's positional arguments in order. `label` is the layer's name,
    for messages.
    """
    label = label or decl.name or op.name
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
                raise _too_many(decl, op, label, key, value)
            target = slots.pop(0)
        given[target.name] = value
        where[target.name] = key
    for k, value in decl.keywords.items():
        if k in given:
            raise _arg_error(decl, label, k, f"argument '{k}' is given twice (once by position)",
                             at_key=True)
        given[k] = value
        where[k] = k
    try:
        return op.check_attrs(given)
    except ArgError as err:
        # Point at the argument the message names, if we can tell which.
        msg = str(err)
        m = re.match(r"unknown argument '([^']+)'", msg)
        if m:
            return _raise_unknown(decl, op, label, m.group(1))
        key = next((where[k] for k in given if f"{k}=" in msg or f"'{k}'" in msg), "")
        raise _arg_error(decl, label, key, msg) from None


def _too_many(decl: LayerDecl, op: OpDef, label: str, key: str, value: Any) -> SpecError:
    positional = [a.name for a in op.args if a.positional]
    words = sorted({w for a in op.args for w in a.words})
    if isinstance(value, str) and words:
        hint = did_you_mean(value, words)
        return _arg_error(decl, label, key, f"'{value}' is not a word {op.name} understands "
                          f"(it takes {', '.join(words)})", hint)
    if positional:
        takes = f"{_plural(len(positional), 'positional argument')} ({', '.join(positional)})"
    else:
        takes = "no positional arguments"
    return _arg_error(decl, label, key, f"{op.name} takes {takes}; {value!r} is one too many")


def _raise_unknown(decl: LayerDecl, op: OpDef, label: str, key: str) -> Attrs:
    known = [a.name for a in op.args]
    # In a key-path spec (YAML, dict) the layer's name and inputs are keys beside its arguments.
    candidates = known + ["name", "inputs"] if decl.path is not None else known
    hint = did_you_mean(key, candidates) or (
        f"{op.name} takes {', '.join(known)}" if known else f"{op.name} takes no arguments")
    raise _arg_error(decl, label, key, f"unknown argument '{key}' for {op.name}", hint,
                     at_key=True) from None


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
    ops: list[OpDef] = []
    for d in decls:
        op = lookup_layer(d.op)
        if op is None:
            raise SpecError(f"unknown layer '{d.op}'", span=d.span, path=d.path, file=file,
                            hint=did_you_mean(d.op, layer_names()))
        ops.append(op)

    names = _names(decls, ops)
    taken = {n: i for i, n in enumerate(names)}
    index = {id(d): i for i, d in enumerate(decls)}

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
            if isinstance(ref, LayerDecl):
                if id(ref) not in index:
                    raise SpecError(f"an input of '{names[i]}' is a layer of another network",
                                    span=d.span, path=d.path)
                refs.append(index[id(ref)])
                continue
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
        attrs = resolve_args(d, op, names[i])
        lo, hi = op.arity
        n_in = len(wired[i])
        if n_in < lo or (hi is not None and n_in > hi):
            want = _plural(lo, "input") if lo == hi else f"at least {_plural(lo, 'input')}"
            raise SpecError(f"{names[i]}: {op.name} takes {want}, got {n_in}",
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
        outputs = [names[index[id(o)]] if isinstance(o, LayerDecl) and id(o) in index else o
                   for o in outputs]
        for j, o in enumerate(outputs):
            if not isinstance(o, str):
                raise SpecError("an output is a layer of another network", file=file)
            if o not in taken:
                span = output_spans[j] if j < len(output_spans) else None
                path = output_paths[j] if j < len(output_paths) else None
                raise SpecError(f"unknown layer '{o}' named as an output", span=span,
                                path=path if path or span else f"outputs[{j}]",
                                hint=did_you_mean(o, taken), file=file)
        outs = tuple(outputs)
    else:
        outs = (names[len(decls) - 1],)
    if all(n.op == "input" for n in nodes):
        raise SpecError("the network is empty: it has an input but no layers", file=file,
                        span=decls[0].span, path=decls[0].path)
    return Graph(name=name, nodes=tuple(nodes), outputs=outs, state=tuple(state), train=train)


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
    "NAME_PATTERN",
    "PREVIOUS",
    "RESERVED_NAMES",
    "LayerDecl",
    "assign_names",
    "keras_auto_name",
    "lower",
    "resolve_args",
]
