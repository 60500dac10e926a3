"""The DSL front end: text -> syntax tree (dsl_parser) -> layer declarations -> `lower`.

Here the statements take meaning: `repeat` blocks are unrolled, the `train` block becomes the
mapping that cnnc.ir.train_config checks, and every declaration keeps the spans of what it was
written from, so that lowering reports errors at the right word.

Names inside `repeat N { ... }`: a label `b` in the block becomes `b_1`, `b_2`, ... `b_N`, one
per copy, and a reference inside the block to a label of the same block means the same copy;
references to layers outside the block are left as they are. Unlabelled layers get auto names.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cnnc.errors import CnncError, Span, SpecError
from cnnc.frontend import ast
from cnnc.frontend.dsl_parser import parse_program
from cnnc.frontend.lower import LayerDecl, default_network_name, lower
from cnnc.input_limits import MAX_LAYERS  # also bounds what `repeat` may unroll to
from cnnc.ir.graph import Graph
from cnnc.ir.train_config import TrainConfig, parse_train_config


def load_dsl(text: str, *, file: str | None = None, name: str | None = None) -> Graph:
    """Parse and lower DSL text; `file` names it in messages, `name` overrides its name."""
    return program_to_graph(parse_program(text, file), name=name)


def program_to_graph(program: ast.Program, *, name: str | None = None) -> Graph:
    file = program.file
    decls: list[LayerDecl] = []
    network: ast.NetworkName | None = None
    outputs: ast.Outputs | None = None
    train: ast.Train | None = None
    for stmt in program.statements:
        if isinstance(stmt, ast.Layer):
            decls.append(layer_decl(stmt))
        elif isinstance(stmt, ast.Repeat):
            decls.extend(_unroll(stmt))
        elif isinstance(stmt, ast.NetworkName):
            _once(network, stmt.span, "the network's name")
            network = stmt
        elif isinstance(stmt, ast.Outputs):
            _once(outputs, stmt.span, "an output statement")
            outputs = stmt
        elif isinstance(stmt, ast.Train):
            _once(train, stmt.span, "a train block")
            train = stmt
        if len(decls) > MAX_LAYERS:
            raise SpecError(f"the network has more than {MAX_LAYERS:,} layers",
                            span=getattr(stmt, "span", None), file=file)
    graph_name = name or (network.name.text if network else default_network_name(file))
    graph = lower(
        graph_name, decls,
        outputs=[n.text for n in outputs.names] if outputs else None,
        output_spans=[n.span for n in outputs.names] if outputs else (),
        file=file,
    )
    if train is not None:
        graph = graph.replace(train=train_config(train))
    return graph


def _once(seen: Any, span: Span, what: str) -> None:
    if seen is not None:
        raise SpecError(f"{what} is given twice (first at line {seen.span.line})", span=span)


def layer_decl(layer: ast.Layer) -> LayerDecl:
    """One layer statement as a declaration, with the span of each argument it was given."""
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    arg_spans: dict[str, Span] = {}
    key_spans: dict[str, Span] = {}
    for arg in layer.args:
        if arg.key is None:
            arg_spans[f"#{len(positional)}"] = arg.value.span
            positional.append(arg.value.value)
            continue
        key = arg.key.text
        if key in keywords:
            raise SpecError(f"argument '{key}' is given twice", span=arg.key.span)
        keywords[key] = arg.value.value
        arg_spans[key] = arg.value.span
        key_spans[key] = arg.key.span
    return LayerDecl(
        op=layer.op.text,
        positional=tuple(positional),
        keywords=keywords,
        name=layer.label.text if layer.label else None,
        inputs=None if layer.inputs is None else [n.text for n in layer.inputs],
        span=layer.op.span,
        arg_spans=arg_spans,
        key_spans=key_spans,
        name_span=layer.label.span if layer.label else None,
        input_spans=() if layer.inputs is None else tuple(n.span for n in layer.inputs),
    )


def _unroll(block: ast.Repeat) -> list[LayerDecl]:
    """The block's declarations `count` times, labels suffixed _1.._N (see the module doc)."""
    count = block.count.value
    if count < 1:
        raise SpecError(f"repeat needs a count of 1 or more. Received {count}.",
                        span=block.count.span)
    body: list[LayerDecl] = []
    for stmt in block.body:
        body.extend(_unroll(stmt) if isinstance(stmt, ast.Repeat) else [layer_decl(stmt)])
    if count * len(body) > MAX_LAYERS:
        raise SpecError(f"repeat {count} makes more than {MAX_LAYERS:,} layers",
                        span=block.count.span)
    labels = {d.name for d in body if d.name is not None}
    out = []
    for k in range(1, count + 1):
        for d in body:
            inputs = d.inputs
            if inputs is not None:
                inputs = [f"{r}_{k}" if r in labels else r for r in inputs]
            out.append(replace(d, name=f"{d.name}_{k}" if d.name is not None else None,
                               inputs=inputs))
    return out


def train_mapping(block: ast.Train) -> tuple[dict[str, Any], dict[str, tuple[Span, Span]]]:
    """The block as the mapping YAML would give, and the (key, value) spans of each key path.

    `key value` gives {key: value}; `key value a=1 b=2` gives {key: {name: value, a: 1, b: 2}};
    `key a=1` gives {key: {a: 1}}.
    """
    settings: dict[str, Any] = {}
    where: dict[str, tuple[Span, Span]] = {"train": (block.span, block.span)}
    for item in block.items:
        key = item.key.text
        if key in settings:
            raise SpecError(f"the setting '{key}' is given twice", span=item.key.span)
        path = f"train.{key}"
        value_span = item.value.span if item.value is not None else item.key.span
        where[path] = (item.key.span, value_span)
        if not item.keywords:
            settings[key] = item.value.value if item.value is not None else None
            continue
        sub: dict[str, Any] = {}
        if item.value is not None:
            sub["name"] = item.value.value
            where[f"{path}.name"] = (item.value.span, item.value.span)
        for kw in item.keywords:
            if kw.key.text in sub:
                raise SpecError(f"'{kw.key.text}' is given twice", span=kw.key.span)
            sub[kw.key.text] = kw.value.value
            where[f"{path}.{kw.key.text}"] = (kw.key.span, kw.value.span)
        settings[key] = sub
    return settings, where


def train_config(block: ast.Train) -> TrainConfig:
    """The block checked by cnnc.ir.train_config, its errors moved onto the words they are about."""
    settings, where = train_mapping(block)
    try:
        return parse_train_config(settings)
    except CnncError as err:
        raise relocate(err, where) from None


def relocate(err: CnncError, where: dict[str, tuple[Span, Span]]) -> CnncError:
    """Give a key-path error the span of its key (unknown keys) or value (bad values)."""
    path = err.path or ""
    while path and path not in where:
        path = path.rpartition(".")[0]
    if not path:
        return err
    key_span, value_span = where[path]
    span = key_span if err.message.startswith("unknown key") else value_span
    return type(err)(err.message, span=span, hint=err.hint)


__all__ = ["layer_decl", "load_dsl", "program_to_graph", "train_config", "train_mapping"]
