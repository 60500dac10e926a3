"""The graph picture and `cnnc summary` show the broadcasting merges and reshape from the op
table: Keras class names, broadcast shapes, the merging colour, their connections, and FLOPs."""

from __future__ import annotations

import re

import cnnc
from cnnc.cli import main
from cnnc.viz.graph_dot import FILL, to_dot

SE = """
network se
input 6x6x8
x: conv2d 8 3 same relu
sq: global_avgpool2d
r: reshape (1, 1, 8)
fc: dense 2 relu
gate: dense 8 sigmoid
se: multiply(x, gate)
d: subtract(se, x)
m: maximum(d, gate)
average(m, x)
"""


def test_the_diagram_draws_each_merge_with_its_class_shape_colour_and_edges():
    dot = to_dot(cnnc.load_spec(SE))
    line = next(s for s in dot.splitlines() if s.startswith('  "se" ['))
    assert "<b>se</b><br/>Multiply<br/>(None, 6, 6, 8)" in line
    assert FILL["merging"] in line
    assert '  "gate" -> "se";' in dot and '  "x" -> "se";' in dot
    line = next(s for s in dot.splitlines() if s.startswith('  "r" ['))
    assert "Reshape<br/>(None, 1, 1, 8)" in line
    for name, cls in (("d", "Subtract"), ("m", "Maximum"), ("average", "Average")):
        label = rf'^  "{name}" \[label=<<b>{name}</b><br/>{cls}<br/>'
        assert re.search(label, dot, re.MULTILINE), name


def test_summary_lists_the_merges_with_their_connections_and_flops(capsys, tmp_path):
    path = tmp_path / "se.cnn"
    path.write_text(SE)
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("se "))
    assert "Multiply" in row and "(None, 6, 6, 8)" in row and row.rstrip().endswith("x, gate")
    assert next(line for line in out.splitlines() if line.startswith("r ")).count("Reshape")
    graph = cnnc.load_spec(SE)
    # one multiply per output element (6 * 6 * 8), per example
    assert graph.node("se").opdef.flops(graph.node("se").attrs, ((None, 6, 6, 8),
                                                                (None, 1, 1, 8)),
                                        (None, 6, 6, 8)) == 288
