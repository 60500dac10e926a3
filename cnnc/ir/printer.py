"""A graph as readable text, one line per node: for debugging, tests and `--dump-ir`.

    graph fashion: 1,413,834 parameters
      input_layer      (None, 28, 28, 1)   = input() shape=28x28x1
      conv2d           (None, 28, 28, 64)  = conv2d(input_layer; conv2d/kernel, conv2d/bias)
                                             filters=64 kernel_size=7x7 padding=same ...
    outputs: dense_2

Inputs come first, then (after ';') the node's parameters. Arguments at their default are left
out unless `defaults=True`. Works on any graph: layer graphs and training graphs alike.
"""

from __future__ import annotations

from typing import Any

from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node, StateSpec
from cnnc.ir.ops import OPS, Shape
from cnnc.ir.shapes import shape_str


def format_shape(shape: Shape | None) -> str:
    """A shape as Keras prints it, (None, 28, 28, 1); '-' for an update op's missing value."""
    return "-" if shape is None else shape_str(shape)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return "x".join(str(v) for v in value)
    if isinstance(value, tuple):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def format_attrs(op: str, attrs: Attrs, *, defaults: bool = False) -> str:
    """`key=value` pairs in the op's argument order; defaults left out unless asked for."""
    opdef = OPS.get(op)
    order = [a.name for a in opdef.args] if opdef is not None else []
    order += [k for k in attrs if k not in order]
    parts = []
    for key in order:
        if key not in attrs:
            continue
        arg = next((a for a in opdef.args if a.name == key), None) if opdef else None
        if not defaults and arg is not None and not arg.required and attrs[key] == arg.default:
            continue
        parts.append(f"{key}={format_value(attrs[key])}")
    return " ".join(parts)


def format_node(node: Node, *, defaults: bool = False, width: int = 0, shape_width: int = 0,
                location: bool = False) -> str:
    operands = ", ".join(node.inputs)
    if node.params:
        operands += "; " + ", ".join(node.params)
    text = (f"{node.name:<{width}}  {format_shape(node.shape):<{shape_width}}  = "
            f"{node.op}({operands})")
    attrs = format_attrs(node.op, node.attrs, defaults=defaults)
    if attrs:
        text += " " + attrs
    if location and node.span is not None:
        text += f"  # {node.span.location()}"
    elif location and node.path is not None:
        text += f"  # {node.path}"
    return text


def format_state(spec: StateSpec) -> str:
    flags = [spec.init]
    if spec.trainable:
        flags.append("trainable")
    if spec.role != "param":
        flags.append(spec.role)
    return f"{spec.name}  {format_shape(spec.shape)}  {' '.join(flags)}"


def format_graph(graph: Graph, *, defaults: bool = False, state: bool = False,
                 location: bool = False) -> str:
    """The whole graph: a header, a line per node, the outputs, and (if asked) the state."""
    width = max((len(n.name) for n in graph.nodes), default=0)
    shape_width = max((len(format_shape(n.shape)) for n in graph.nodes), default=0)
    lines = [f"graph {graph.name}: {graph.param_count():,} parameters"]
    lines += ["  " + format_node(n, defaults=defaults, width=width, shape_width=shape_width,
                                 location=location) for n in graph.nodes]
    lines.append("outputs: " + ", ".join(graph.outputs))
    if state and graph.state:
        lines.append("state:")
        lines += ["  " + format_state(s) for s in graph.state]
    return "\n".join(lines)


__all__ = ["format_attrs", "format_graph", "format_node", "format_shape", "format_state",
           "format_value"]
