"""The layer graph as DOT (cnnc/viz/graph_dot.py): a node per layer, an edge per connection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from png_checks import assert_drawn, load_png

import cnnc
from cnnc.cli import main
from cnnc.viz import graph_dot
from cnnc.viz.graph_dot import GraphvizMissing, render_dot, to_dot

SPECS = Path(__file__).resolve().parents[2] / "specs"
NODE = re.compile(r'^  "([^"]+)" \[label=')
EDGE = re.compile(r'^  "([^"]+)" -> "([^"]+)";$')


def parse(dot: str) -> tuple[list[str], list[tuple[str, str]]]:
    lines = dot.splitlines()
    nodes = [m.group(1) for m in map(NODE.match, lines) if m]
    edges = [(m.group(1), m.group(2)) for m in map(EDGE.match, lines) if m]
    return nodes, edges


@pytest.mark.parametrize("spec", ["fashion.yaml", "resnet_mini.cnn", "inception_mini.cnn"])
def test_one_node_per_layer_and_one_edge_per_connection(spec):
    graph = cnnc.load_spec(SPECS / spec)
    nodes, edges = parse(to_dot(graph))
    assert nodes == [n.name for n in graph.nodes]
    assert sorted(edges) == sorted((v, n.name) for n in graph.nodes for v in n.inputs)


def test_branches_are_drawn_as_branches():
    graph = cnnc.load_spec(SPECS / "inception_mini.cnn")
    _, edges = parse(to_dot(graph))
    assert len([e for e in edges if e[0] == "stem"]) == 3  # three branches leave the stem
    assert sorted(src for src, dst in edges if dst == "concatenate") == ["b1", "b2", "b3"]


def test_labels_hold_type_shape_and_parameters():
    graph = cnnc.load_spec(SPECS / "fashion.yaml")
    dot = to_dot(graph)
    line = next(s for s in dot.splitlines() if s.startswith('  "conv2d" ['))
    assert "label=<<b>conv2d</b><br/>Conv2D + relu<br/>(None, 28, 28, 64)<br/>3,200 params>" in line
    line = next(s for s in dot.splitlines() if s.startswith('  "flatten" ['))
    assert "params" not in line


def test_the_same_input_twice_is_two_edges():
    graph = cnnc.load_spec("network twice\ninput 4\na: dense 4\nadd(a, a)\n")
    _, edges = parse(to_dot(graph))
    assert edges.count(("a", "add")) == 2


@pytest.mark.skipif(graph_dot.dot_program() is None,
                    reason="Graphviz's dot is not installed (Debian: apt-get install graphviz)")
def test_the_command_draws_svg_and_png(tmp_path, capsys):
    base = tmp_path / "resnet"
    assert main(["show", str(SPECS / "resnet_mini.cnn"), "--graph", "--out", str(base)]) == 0
    out = capsys.readouterr().out
    for suffix in (".dot", ".svg", ".png"):
        assert f"wrote {base}{suffix}" in out and Path(f"{base}{suffix}").is_file()
    svg = Path(f"{base}.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "shortcut_bn" in svg
    assert_drawn(load_png(Path(f"{base}.png")), min_colours=4)


def test_without_graphviz_dot_is_written_and_one_line_says_why(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(graph_dot.shutil, "which", lambda name: None)
    base = tmp_path / "lenet"
    assert main(["show", str(SPECS / "lenet5.cnn"), "--graph", "--out", f"{base}.svg"]) == 0
    out, err = capsys.readouterr()
    assert out == f"wrote {base}.dot\n" and Path(f"{base}.dot").is_file()
    assert not Path(f"{base}.svg").exists()
    assert err.count("\n") == 1 and "Graphviz's 'dot' program is not installed" in err
    assert "apt-get install graphviz" in err
    with pytest.raises(GraphvizMissing):
        render_dot("digraph {}", "svg")


def test_a_notebook_gets_the_diagram(small_model):
    diagram = small_model.show_graph()
    assert str(diagram) == diagram.dot and parse(diagram.dot)[0][0] == "input_layer"
    if graph_dot.dot_program() is not None:
        assert "<svg" in diagram._repr_svg_()
