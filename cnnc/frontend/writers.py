"""A layer graph written back out as DSL text or YAML, each of which parses to an equal graph.

Both writers share one reading of the graph: arguments at their defaults are left out, names
that lowering would give anyway are left out, and inputs are written only where a layer does
not simply follow the one before it. The train section is written with the settings a reader
looks for (dataset, epochs, batch size, optimizer, loss) and every other one not at its default.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from cnnc.errors import SpecError
from cnnc.frontend.dsl_parser import CONSTANTS
from cnnc.frontend.lower import NAME_PATTERN, RESERVED_NAMES, assign_names
from cnnc.ir import args as A
from cnnc.ir.graph import Graph, Node
from cnnc.ir.ops import OpDef
from cnnc.ir.train_config import (
    CALLBACK_ARGS,
    TrainConfig,
    parse_callback,
    parse_optimizer,
    parse_train_config,
)

# Words a name cannot be written as: the DSL's keywords and its constants.
KEYWORDS = RESERVED_NAMES | set(CONSTANTS)
ALWAYS_WRITTEN = ("dataset", "epochs", "batch_size", "optimizer", "loss")


@dataclass(frozen=True)
class LayerText:
    """One node as a spec states it."""

    node: Node
    label: str | None  # the name, if lowering would not give it back by itself
    inputs: tuple[str, ...] | None  # None: the layer before
    positional: tuple[tuple[A.Arg, Any], ...]
    options: tuple[tuple[A.Arg, Any], ...]  # the other arguments off their default, in op order


def layer_texts(graph: Graph) -> list[LayerText]:
    """The graph's nodes as spec declarations, in graph order. Layer graphs only."""
    nodes = list(graph.nodes)
    for n in nodes:
        if n.opdef.group != "layer":
            raise SpecError(f"only layer graphs can be written as specs; '{n.name}' is a "
                            f"{n.op} node (a {n.opdef.group} op)")
    labels = _needed_names(nodes)
    out = []
    for i, node in enumerate(nodes):
        op = node.opdef
        chained = i > 0 and node.inputs == (nodes[i - 1].name,)
        positional = tuple((a, node.attrs[a.name]) for a in op.args if a.positional)
        options = tuple((a, node.attrs[a.name]) for a in op.args if not a.positional and (
            a.required or node.attrs[a.name] != a.default))
        out.append(LayerText(
            node=node,
            label=node.name if node.name in labels else None,
            inputs=None if chained or op.name == "input" else node.inputs,
            positional=positional, options=options,
        ))
    return out


def _needed_names(nodes: list[Node]) -> set[str]:
    """Names to write: each name is left out if auto naming gives it back without it.

    Tried one at a time in graph order, starting from all names written; a name stays only
    if leaving it out would change some layer's name.
    """
    ops: list[OpDef] = [n.opdef for n in nodes]
    names = [n.name for n in nodes]
    keep = set(names)
    for name in names:
        keep.discard(name)
        if assign_names(ops, [n if n in keep else None for n in names]) != names:
            keep.add(name)
    return keep


def _is_default_outputs(graph: Graph) -> bool:
    return graph.outputs == (graph.nodes[-1].name,)


# ---------------------------------------------------------------- train settings


def train_settings(config: TrainConfig) -> dict[str, Any]:
    """The settings as a spec's train mapping: the main ones, and others off their default."""
    default = TrainConfig()
    out: dict[str, Any] = {}
    for key in TrainConfig.__dataclass_fields__:
        value = getattr(config, key)
        if key == "optimizer":
            base = parse_optimizer(value.name)
            extra = {k: v for k, v in value.args.items() if base.args.get(k) != v}
            out[key] = {"name": value.name, **extra} if extra else value.name
        elif key == "schedule":
            if value != default.schedule:
                base = parse_train_config({"schedule": value["name"]}).schedule
                extra = {k: v for k, v in value.items() if base.get(k) != v}
                out[key] = {"name": value["name"], **extra} if extra else value["name"]
        elif key == "augment":
            if value != default.augment:
                out[key] = {k: v for k, v in value.items() if default.augment.get(k) != v}
        elif key in CALLBACK_ARGS:  # Keras' callbacks: their arguments off the defaults
            if value is not None:
                base = parse_callback(key, {"name": value["name"]} if "name" in value else {},
                                      key)
                extra = {k: v for k, v in value.items() if base.get(k) != v}
                out[key] = ({"name": value["name"], **extra} if extra else value["name"]
                            ) if "name" in value else (extra or True)
        elif key in ALWAYS_WRITTEN or value != getattr(default, key):
            out[key] = value
    return out


# ---------------------------------------------------------------- DSL


def _dsl_value(value: Any, arg: A.Arg | None = None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if not re.fullmatch(r"[-+]?[0-9.]+(e[-+]?[0-9]+)?", text):
            raise SpecError(f"cannot write the number {value!r} in a spec")
        return text
    if isinstance(value, str):
        if re.fullmatch(NAME_PATTERN, value) and value.lower() not in KEYWORDS:
            return value
        return json.dumps(value)
    if isinstance(value, tuple):
        if _one_number_will_do(value, arg):
            return str(value[0])
        if len(value) >= 2 and all(_positive_int(v) for v in value):
            return "x".join(str(v) for v in value)
        inner = ", ".join(_dsl_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise SpecError(f"cannot write the value {value!r} in a spec")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _one_number_will_do(value: tuple, arg: A.Arg | None) -> bool:
    """Whether the argument reads its first number alone back as `value`: a square kernel_size
    (3 -> (3, 3)), a one-axis shape (8 -> (8,))."""
    if arg is None or not value or not _positive_int(value[0]):
        return False
    try:
        return arg.check(arg.name, value[0]) == value
    except A.ArgError:
        return False


def _dsl_layer(lt: LayerText) -> str:
    head = lt.node.op if lt.inputs is None else f"{lt.node.op}({', '.join(lt.inputs)})"
    parts = [f"{lt.label}: {head}" if lt.label else head]
    parts += [_dsl_value(v, a) for a, v in lt.positional]
    parts += [v if _is_word(a, v) else f"{a.name}={_dsl_value(v, a)}" for a, v in lt.options]
    return " ".join(parts)


def _is_word(arg: A.Arg, value: Any) -> bool:
    """A value the DSL may write as a bare word (relu, same)."""
    return bool(arg.words) and isinstance(value, str) and value in arg.words


def to_dsl(graph: Graph) -> str:
    """The graph as DSL text (see docs/dsl.md)."""
    lines = [f"network {_dsl_value(graph.name)}"]
    lines += [_dsl_layer(lt) for lt in layer_texts(graph)]
    if not _is_default_outputs(graph):
        lines.append("output " + ", ".join(graph.outputs))
    if graph.train is not None:
        lines.append("train {")
        for key, value in train_settings(graph.train).items():
            if isinstance(value, dict):
                named = [_dsl_value(value["name"])] if "name" in value else []
                rest = [f"{k}={_dsl_value(v)}" for k, v in value.items() if k != "name"]
                lines.append("  " + " ".join([key, *named, *rest]))
            else:
                lines.append(f"  {key} {_dsl_value(value)}")
        lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- YAML


def _yaml_value(value: Any, arg: A.Arg | None = None) -> Any:
    """Tuples as lists (a square pair as one number, as Keras allows)."""
    if isinstance(value, tuple):
        if _one_number_will_do(value, arg):
            return value[0]
        return [_yaml_value(v) for v in value]
    return value


def _flow(data: Any) -> str:
    return yaml.safe_dump(data, default_flow_style=True, sort_keys=False,
                          width=1 << 30).strip().removesuffix("\n...").strip()


def _yaml_layer(lt: LayerText) -> str:
    rest: dict[str, Any] = {a.name: _yaml_value(v, a) for a, v in lt.options}
    if lt.inputs is not None:
        rest["inputs"] = list(lt.inputs)
    if lt.label:
        rest["name"] = lt.label
    op = lt.node.op
    if len(lt.positional) == 1:
        a, v = lt.positional[0]
        return _flow({op: _yaml_value(v, a), **rest})
    if lt.positional:
        return _flow({op: [_yaml_value(v, a) for a, v in lt.positional], **rest})
    if rest:
        return f"{op}: {_flow(rest)}"
    return op


def to_yaml(graph: Graph) -> str:
    """The graph as a YAML spec (see the schema in cnnc/frontend/yaml_spec.py)."""
    texts = layer_texts(graph)
    lines = [f"network: {_flow(graph.name)}"]
    first = texts[0]
    if first.node.op == "input" and first.label is None and not first.options:
        lines.append(f"input: {_flow(list(first.node.attrs['shape']))}")
        texts = texts[1:]
    lines.append("layers:")
    lines += [f"  - {_yaml_layer(lt)}" for lt in texts]
    if not _is_default_outputs(graph):
        lines.append(f"outputs: {_flow(list(graph.outputs))}")
    if graph.train is not None:
        body = yaml.safe_dump({"train": train_settings(graph.train)}, sort_keys=False,
                              default_flow_style=False)
        lines.append(body.rstrip())
    return "\n".join(lines) + "\n"


__all__ = ["LayerText", "layer_texts", "to_dsl", "to_yaml", "train_settings"]
