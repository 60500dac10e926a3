"""The YAML front end: a spec mapping (YAML text, or a dict from Python) -> layer declarations.

    network: fashion                 # optional; default: the file's stem
    input: [28, 28, 1]               # or 28x28x1; or a first layer `- input: ...`
    layers:
      - conv2d: [64, 7]              # the first key (other than name/inputs) names the layer:
        activation: relu             #   its value holds positional arguments (a value, a list,
        padding: same                #   or null), the other keys are Keras keyword arguments
      - {maxpool2d: 2}
      - flatten
      - {dense: 10, activation: softmax, name: out}
      - add: {inputs: [a, b]}        # or the arguments as a mapping under the layer's key
    outputs: [out]                   # optional; default: the last layer
    train: {epochs: 10, optimizer: nadam}

or, for a model trained elsewhere, `onnx: model.onnx` (a path relative to the spec's folder)
instead of input, layers and outputs: that model's layers and weights (onnx_import.py), with
this spec's network name and train section.

Text is read with a SafeLoader subclass (no Python tags, nothing executed) that also reads
exponent floats such as 1e-3, which YAML 1.1 would leave as strings. Every value keeps its key
path and its line and column, so errors read ``specs/x.yaml:7:20: layers[3].kernel_size: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cnnc.errors import CnncError, Span, SpecError, did_you_mean
from cnnc.frontend.budget import check_yaml_events
from cnnc.frontend.lower import LayerDecl, default_network_name, dims_value, lower
from cnnc.input_limits import MAX_LAYERS, MAX_NESTING
from cnnc.ir.graph import Graph
from cnnc.ir.ops import lookup_layer
from cnnc.ir.train_config import parse_train_config

TOP_KEYS = ("network", "input", "layers", "outputs", "train", "onnx")
LAYER_KEYS = ("name", "inputs")  # keys of a layer item that are not arguments

Marks = dict[str, tuple[Span, Span]]  # key path -> (span of the key, span of the value)


# libyaml's parser when PyYAML was built with it: the same documents, many times faster.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecLoader(_SAFE_LOADER):  # type: ignore[misc, valid-type]
    """A safe loader (no Python tags), plus floats written without a dot (1e-3, 5E+2)."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str, *, file: str | None = None, name: str | None = None) -> Graph:
    """Parse and lower a YAML spec; `file` names it in messages, `name` overrides its name."""
    data, marks = parse_yaml(text, file)
    return mapping_to_graph(data, file=file, name=name, marks=marks)


def parse_yaml(text: str, file: str | None = None) -> tuple[Any, Marks]:
    """The document's data, and where each key path was written.

    The text's size in values, aliases and nesting is checked first (cnnc.frontend.budget).
    """
    try:
        check_yaml_events(text, file, SpecLoader)
        loader = SpecLoader(text)
        try:
            node = loader.get_single_node()
            marks: Marks = {}
            if node is not None:
                _walk(node, "", marks, file, text)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as err:  # a character YAML does not allow, such as NUL
        raise _reader_error(err, text, file) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        span = _span(mark, file, text) if mark else None
        if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
            raise SpecError("invalid YAML: a tab character: YAML indents with spaces only",
                            file=file, span=span,
                            hint="replace the tabs with spaces (two a level, as the examples "
                                 "in specs/ do)") from None
        problem = err.problem or err.context or "invalid YAML"
        context = f" ({err.context})" if err.context and err.problem else ""
        raise SpecError(f"invalid YAML: {problem}{context}", file=file, span=span) from None
    except yaml.YAMLError as err:
        raise SpecError(f"invalid YAML: {err}", file=file) from None
    except ValueError as err:  # a value the constructor cannot make, e.g. a 5,000-digit int
        raise SpecError(f"invalid YAML value: {err}", file=file) from None
    return data, marks


def _reader_error(err: yaml.reader.ReaderError, text: str, file: str | None) -> SpecError:
    position = max(0, min(err.position, len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    char = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or " ")
    return SpecError(f"invalid YAML: the character U+{char:04X} is not allowed in YAML text "
                     "(is this a binary file?)", file=file,
                     span=Span(file, line, column, source=text))


def _span(mark: Any, file: str | None, text: str) -> Span:
    return Span(file, mark.line + 1, mark.column + 1, source=text)


def _walk(node: yaml.Node, path: str, marks: Marks, file: str | None, text: str) -> None:
    """Record the spans of every key path under `node`; reject duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            sub = f"{path}.{key}" if path else str(key)
            if key is not None and key in seen:
                raise SpecError(f"duplicate key '{key}'", path=sub,
                                span=_span(key_node.start_mark, file, text))
            seen.add(key)
            marks[sub] = (_span(key_node.start_mark, file, text),
                          _span(value_node.start_mark, file, text))
            _walk(value_node, sub, marks, file, text)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = f"{path}[{i}]"
            span = _span(item.start_mark, file, text)
            marks[sub] = (span, span)
            _walk(item, sub, marks, file, text)


class _Where:
    """Spans by key path, for errors; empty for a dict that came from Python."""

    def __init__(self, marks: Marks | None, file: str | None):
        self.marks = marks or {}
        self.file = file

    def key(self, path: str) -> Span | None:
        return self.marks[path][0] if path in self.marks else None

    def value(self, path: str) -> Span | None:
        return self.marks[path][1] if path in self.marks else None

    def error(self, path: str, message: str, hint: str | None = None, *,
              at_key: bool = False) -> SpecError:
        span = self.key(path) if at_key else self.value(path)
        return SpecError(message, path=path or None, span=span, hint=hint, file=self.file)


def mapping_to_graph(data: Any, *, file: str | None = None, name: str | None = None,
                     marks: Marks | None = None) -> Graph:
    """Lower a spec mapping (see the module doc); errors carry key paths, and spans if known."""
    where = _Where(marks, file)
    if data is None:
        raise SpecError("the network is empty: the spec has no 'input' and no 'layers'",
                        file=file)
    if not isinstance(data, Mapping):
        raise where.error("", f"a spec is a mapping with 'layers' (and 'input', 'train', ...), "
                          f"not a {type(data).__name__}")
    for key in data:
        if key not in TOP_KEYS:
            raise where.error(str(key), f"unknown key '{key}'",
                              did_you_mean(str(key), TOP_KEYS)
                              or f"a spec has the keys {', '.join(TOP_KEYS)}", at_key=True)
    if "onnx" in data:
        return _onnx_graph(data, where, name)
    decls: list[LayerDecl] = []
    if data.get("input") is not None:
        decls.append(_input_decl(data["input"], where))
    layers = data.get("layers")
    if layers is not None and not isinstance(layers, list):
        hint = None
        if isinstance(layers, Mapping):
            hint = ("a mapping was given: make each layer a list item, a '- ' before it (for "
                    "example '  - {conv2d: [32, 3]}' and '  - flatten', one a line)")
        raise where.error("layers", "expected a list of layers, such as [flatten, {dense: 10}]",
                          hint)
    if layers is not None and len(layers) > MAX_LAYERS:
        raise where.error("layers", f"the network has {len(layers):,} layers, more than the "
                          f"{MAX_LAYERS:,} cnnc compiles")
    for i, item in enumerate(layers or ()):
        decls.append(_layer_decl(item, f"layers[{i}]", where))

    network = data.get("network")
    if network is not None and not isinstance(network, str):
        raise where.error("network", f"expected the network's name, got {network!r}")
    graph_name = name or network or default_network_name(file)

    outputs = data.get("outputs")
    if isinstance(outputs, str):
        outputs = [outputs]
    output_paths: list[str] = []
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise where.error("outputs", "expected a layer name or a list of layer names")
        output_paths = [f"outputs[{j}]" if isinstance(data["outputs"], list) else "outputs"
                        for j in range(len(outputs))]
    graph = lower(
        graph_name, decls, outputs=outputs,
        output_spans=[where.value(p) for p in output_paths], output_paths=output_paths,
        file=file,
    )
    if "train" in data:
        graph = graph.replace(train=_train(data["train"], where))
    return graph


def _onnx_graph(data: Mapping, where: _Where, name: str | None) -> Graph:
    """`onnx: model.onnx` (a path relative to the spec's folder): that model, under the spec's
    network name and train section, with the model's weights."""
    from cnnc.frontend.onnx_import import load_onnx

    for key in ("input", "layers", "outputs"):
        if key in data:
            raise where.error(key, f"a spec with 'onnx' takes its layers from the model; "
                              f"remove '{key}'", at_key=True)
    value = data["onnx"]
    if not isinstance(value, str) or not value.endswith(".onnx"):
        raise where.error("onnx", f"expected the path of an .onnx file, got {value!r}")
    path = Path(value)
    if where.file is not None and not path.is_absolute():
        path = Path(where.file).parent / path
    graph = load_onnx(path)
    network = data.get("network")
    if network is not None and not isinstance(network, str):
        raise where.error("network", f"expected the network's name, got {network!r}")
    if name or network:
        graph = graph.replace(name=name or network)
    if "train" in data:
        graph = graph.replace(train=_train(data["train"], where))
    return graph


def _train(value: Any, where: _Where):
    try:
        return parse_train_config({} if value is None else value)
    except CnncError as err:
        path = err.path or "train"
        probe = path
        while probe and probe not in where.marks:
            shorter = re.sub(r"(\.[^.\[\]]*|\[\d+\])$", "", probe)
            probe = shorter if shorter != probe else ""  # a dict from Python has no marks
        if probe:
            at_key = err.message.startswith("unknown key") and probe == path
            err.span = where.key(probe) if at_key else where.value(probe)
        if err.file is None:
            err.file = where.file
        raise err from None


def value_from_yaml(value: Any, depth: int = 0) -> Any:
    """YAML lists are tuples here, and '28x28x1' is a shape, as in the DSL.

    A dict from Python has not been through the YAML checks: lists nested deeper than
    MAX_NESTING (or a list inside itself) are refused here.
    """
    if isinstance(value, list):
        if depth >= MAX_NESTING:
            raise SpecError(f"lists nest more than {MAX_NESTING} deep in this value")
        return tuple(value_from_yaml(v, depth + 1) for v in value)
    if isinstance(value, str):
        return dims_value(value) or value
    return value


def _input_decl(value: Any, where: _Where) -> LayerDecl:
    if isinstance(value, Mapping):
        return _layer_decl({"input": None, **value}, "input", where, nested=True)
    return LayerDecl(op="input", positional=(value_from_yaml(value),), span=where.key("input"),
                     path="input", arg_spans={"#0": where.value("input")},
                     arg_paths={"#0": "input"})


def _layer_decl(item: Any, path: str, where: _Where, *, nested: bool = False) -> LayerDecl:
    """One item of `layers`: a layer name, or a mapping whose first other key is the layer.

    `nested` (a top-level `input` mapping) means the keys sit directly under `path`.
    """
    if isinstance(item, str):
        if re.search(r"\s-(\s|$)", item) and lookup_layer(item) is None:
            # '  - batchnorm\n   - relu': the deeper '- relu' continues the item above as text
            first = item.split(" -")[0].strip()
            raise where.error(path, f"'{item}' is not a layer: it reads as list items run "
                              f"together, '- {first}' and the next '-' line indented deeper",
                              "start every layer's '- ' at the same column, one layer a line")
        return LayerDecl(op=item, span=where.value(path), path=path)
    if not isinstance(item, Mapping) or not item:
        raise where.error(path, "expected a layer: a name such as flatten, or a mapping such as "
                          "{conv2d: [64, 3], activation: relu}")
    op = next((k for k in item if k not in LAYER_KEYS), None)
    if op is None:
        raise where.error(path, "this item names no layer; write it as {LAYER: ARGUMENTS, ...}",
                          at_key=True)
    if not isinstance(op, str):
        raise where.error(path, f"expected a layer name, got {op!r}", at_key=True)
    op_path = path if nested else f"{path}.{op}"
    decl = LayerDecl(op=op, span=where.key(op_path) or where.value(path), path=path)
    given = item[op]
    positional: list[Any] = []
    arg_spans: dict[str, Span | None] = {}
    arg_paths: dict[str, str] = {}
    fields: dict[str, tuple[Any, str]] = {}  # key -> (value, key path)
    if isinstance(given, Mapping):
        for k, v in given.items():
            fields[str(k)] = (v, f"{op_path}.{k}")
    elif isinstance(given, list) and not _takes_one_positional(op):
        for j, v in enumerate(given):
            arg_spans[f"#{j}"] = where.value(f"{op_path}[{j}]")
            arg_paths[f"#{j}"] = f"{op_path}[{j}]"
            positional.append(value_from_yaml(v))
    elif given is not None:
        arg_spans["#0"] = where.value(op_path)
        arg_paths["#0"] = op_path
        positional.append(value_from_yaml(given))
    for k, v in item.items():
        if k == op:
            continue
        key_path = f"{path}.{k}" if not nested else f"input.{k}"
        if str(k) in fields:
            raise where.error(key_path, f"'{k}' is given twice", at_key=True)
        fields[str(k)] = (v, key_path)

    keywords: dict[str, Any] = {}
    key_spans: dict[str, Span | None] = {}
    for k, (v, key_path) in fields.items():
        if k == "name":
            decl.name = v
            decl.name_span = where.value(key_path)
        elif k == "inputs":
            decl.inputs, decl.input_spans = _inputs(v, key_path, where)
        else:
            keywords[k] = value_from_yaml(v)
            arg_spans[k] = where.value(key_path)
            arg_paths[k] = key_path
            key_spans[k] = where.key(key_path)
    decl.positional = tuple(positional)
    decl.keywords = keywords
    decl.arg_spans = {k: s for k, s in arg_spans.items() if s is not None}
    decl.key_spans = {k: s for k, s in key_spans.items() if s is not None}
    decl.arg_paths = arg_paths
    return decl


def _takes_one_positional(op: str) -> bool:
    """For such layers a list is that one argument: `input: [28, 28, 1]`, `maxpool2d: [2, 2]`."""
    opdef = lookup_layer(op)
    return opdef is not None and sum(a.positional for a in opdef.args) == 1


def _inputs(value: Any, path: str, where: _Where) -> tuple[list[str], tuple[Span | None, ...]]:
    if isinstance(value, str):
        return [value], (where.value(path),)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.error(path, "expected a layer name or a list of layer names")
    return list(value), tuple(where.value(f"{path}[{j}]") for j in range(len(value)))


__all__ = ["SpecLoader", "load_yaml", "mapping_to_graph", "parse_yaml", "value_from_yaml"]
