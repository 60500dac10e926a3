"""The layer graph as a Graphviz diagram (`cnnc show SPEC --graph`): DOT text, then SVG/PNG.

One box per layer with its name, type, output shape and parameter count; one arrow per
connection, so branches and merges (residual additions, Inception's concatenations) are drawn
as branches. DOT text needs nothing; SVG and PNG need Graphviz's `dot` program, and without it
`render_dot` raises GraphvizMissing, which says so in one line.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path

from cnnc.atomic import atomic_write
from cnnc.errors import CnncError
from cnnc.ir.graph import Graph, Node
from cnnc.ir.printer import format_shape

DOT_TIMEOUT_S = 60

DEFAULT_FILL = "#ffffff"
# Box colours by kind of layer (cnnc/ir/ops.py LAYER_KINDS), so the eye finds the convolutions
# and the merges: an entry for every kind (tests/viz/test_viz_tables.py holds it to the table).
# The diagram draws layer graphs; another op (a fused one, in an inference graph) is plain.
FILL: dict[str, str] = {
    "input": "#e0e0e0",
    "convolution": "#cfe2f3",
    "pooling": "#d9ead3",
    "global_pooling": "#d9ead3",
    "dense": "#fce5cd",
    "merging": "#fff2cc",
    "normalization": DEFAULT_FILL,
    "activation": DEFAULT_FILL,
    "regularization": DEFAULT_FILL,
    "reshaping": DEFAULT_FILL,
}


def fill_of(node: Node) -> str:
    """The node's box colour: its kind's, or plain for an op that is not a layer."""
    kind = node.opdef.kind
    return DEFAULT_FILL if kind is None else FILL[kind]


class GraphvizMissing(CnncError):
    """Graphviz's `dot` program is not installed: DOT text only."""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _html(text: str) -> str:
    return html.escape(text, quote=True)


def _label(graph: Graph, node: Node) -> str:
    """An HTML-like label: the layer's name in bold, then type, output shape, parameters."""
    kind = node.opdef.keras_name or node.op
    activation = node.attrs.get("activation", "linear")
    if activation != "linear":
        kind += f": {activation}" if node.op == "activation" else f" + {activation}"
    params = sum(graph.state_map[p].size for p in node.params)
    lines = [f"<b>{_html(node.name)}</b>", _html(kind), _html(format_shape(node.shape))]
    if params:
        lines.append(f"{params:,} params")
    return "<" + "<br/>".join(lines) + ">"


def to_dot(graph: Graph) -> str:
    """The graph in Graphviz's DOT language: a node per layer, an edge per connection."""
    title = f"{graph.name}: {graph.param_count():,} parameters"
    lines = [
        f"digraph {_quote(graph.name)} {{",
        "  rankdir=TB;",
        f'  graph [label={_quote(title)}, labelloc=t, fontname="Helvetica", fontsize=14];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [color="#555555", arrowsize=0.7];',
    ]
    for node in graph.nodes:
        fill = fill_of(node)
        lines.append(f'  {_quote(node.name)} [label={_label(graph, node)}, '
                     f'fillcolor="{fill}"];')
    for node in graph.nodes:
        for value in node.inputs:
            lines.append(f"  {_quote(value)} -> {_quote(node.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_program() -> str | None:
    """The path of Graphviz's `dot`, or None when it is not installed."""
    return shutil.which("dot")


def render_dot(dot_text: str, fmt: str) -> bytes:
    """The diagram as `fmt` ('svg' or 'png') by Graphviz's `dot`."""
    program = dot_program()
    if program is None:
        raise GraphvizMissing(
            f"Graphviz's 'dot' program is not installed, so no {fmt.upper()} was drawn",
            hint="install Graphviz (Debian: apt-get install graphviz; scripts/setup.sh does)")
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode(),
                              capture_output=True, timeout=DOT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CnncError(f"Graphviz's dot failed: {err}") from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise CnncError(f"Graphviz's dot failed (exit {done.returncode})"
                        + (f": {message[0]}" if message else ""))
    return done.stdout


def write_graph(graph: Graph, base: str | Path, formats: tuple[str, ...] = ("svg", "png")
                ) -> tuple[list[Path], GraphvizMissing | None]:
    """Write base.dot, then base.<fmt> for each format that Graphviz can draw here.

    Returns the files written and, when `dot` is missing, the error saying so (the DOT file is
    written either way).
    """
    base = Path(base)
    text = to_dot(graph)
    written = [atomic_write(base.with_name(base.name + ".dot"), text)]
    for fmt in formats:
        try:
            data = render_dot(text, fmt)
        except GraphvizMissing as err:
            return written, err
        written.append(atomic_write(base.with_name(f"{base.name}.{fmt}"), data))
    return written, None


class GraphDiagram:
    """A graph's diagram for Python and notebooks: `.dot` text; shown as SVG where Graphviz is
    installed; `save(base)` writes base.dot, .svg and .png as `cnnc show --graph` does."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.dot = to_dot(graph)

    def __str__(self) -> str:
        return self.dot

    def _repr_svg_(self) -> str | None:
        if dot_program() is None:
            return None  # notebooks then fall back to the text
        return render_dot(self.dot, "svg").decode()

    def save(self, base: str | Path) -> list[Path]:
        written, missing = write_graph(self.graph, base)
        if missing is not None:
            raise missing
        return written
