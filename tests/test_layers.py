"""cnnc's layers import downward only, and no modules import each other in a circle.

The layer order, lowest first, is written once, in `LAYERS` below: a module may import its own
layer and the layers under it, never one above. Every import counts: at the top of a module,
inside a function (imported late to start fast), and under `if TYPE_CHECKING:`. Why the order
is this one:

- base: errors, settings, bounds and file helpers that every layer uses and that know no graph;
- ir: the graph, the op table, shapes, and what reads a graph alone (initial values, input
  feeds, weights files). It sits under the front ends because they build it;
- frontend: DSL, YAML, Python and ONNX specs to graphs; passes: graph to graph; backends: graphs
  run (NumPy, OpenCL); data: the datasets, files in and arrays out;
- stages: what works on a compiled model — training, tuning, export, pictures, the driver
  qualification (`qualify.py`, which a child process runs: the backend only names it), the
  cross-backend check, and `model.py`, the compiled model itself. The Model's methods
  (fit, export_onnx, show_*) are doors into its peers, and a training run compiles a Model, so
  model.py is a peer of train/, tune/, export/ and viz/ rather than under them; peers may import
  each other, and the circle check keeps them from tangling;
- distributed: a data-parallel run, which composes train/session.py's stages;
- entry points: the package root's Python API (`cnnc.compile`, `cnnc.load_spec`), the
  commands and `cnnc doctor`; last, the command line itself and the helpers for tests.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "cnnc"

# (layer, the top-level names under cnnc/ it holds), lowest first; "cnnc" is the package root.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("errors", "settings", "intmath", "atomic", "files", "rng", "input_limits",
              "version")),
    ("ir", ("ir", "initializers", "inputs", "weights")),
    ("frontend", ("frontend",)),
    ("passes", ("passes",)),
    ("backends", ("backends",)),
    ("data", ("data",)),
    ("stages", ("train", "tune", "export", "viz", "crosscheck", "model", "qualify")),
    ("distributed", ("distributed",)),
    ("entry points", ("cnnc", "commands", "doctor", "onnx_backend")),
    ("cli and test helpers", ("cli", "testing")),
)
RANK = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its __init__.py)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(module: str, source: str, is_package: bool, modules: set[str]) -> Iterator[str]:
    """The cnnc modules `source` (the text of `module`) imports, wherever the import is."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            # `from cnnc.x import y` imports the module cnnc.x.y when there is one, else cnnc.x
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    names = set(files)
    return {m: set(imported(m, p.read_text(encoding="utf-8"), p.name == "__init__.py", names))
            for m, p in files.items()}


def top_name(module: str) -> str:
    """The name under cnnc/ that places a module in a layer ("cnnc" for the package root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def rank(module: str) -> int:
    return RANK[top_name(module)]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a higher layer, as 'a (its layer) imports b (its layer)'."""
    return sorted(f"{a} ({LAYERS[rank(a)][0]}) imports {b} ({LAYERS[rank(b)][0]})"
                  for a, targets in graph.items() for b in targets if rank(b) > rank(a))


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_module_has_a_layer(graph):
    missing = sorted({top_name(m) for m in graph} - set(RANK))
    assert not missing, f"place these in tests/test_layers.py LAYERS: {missing}"


def test_imports_point_down(graph):
    assert upward_imports(graph) == []


def test_no_modules_import_each_other_in_a_circle(graph):
    assert circles(graph) == []


def test_the_checks_see_every_kind_of_import(tmp_path):
    """An upward import inside a function, one under TYPE_CHECKING and a relative one are all
    found, and so is a circle through them: the checks above can fail."""
    package = tmp_path / "cnnc"
    (package / "ir").mkdir(parents=True)
    (package / "train").mkdir()
    (package / "__init__.py").write_text("")
    (package / "ir" / "__init__.py").write_text("")
    (package / "train" / "__init__.py").write_text("")
    (package / "ir" / "graph.py").write_text(
        "def f():\n    from cnnc.train import loop\n")
    (package / "ir" / "ops.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..train.loop import T\n")
    (package / "train" / "loop.py").write_text("from cnnc.ir import graph\n")
    found = import_graph(package)
    assert found["cnnc.ir.graph"] == {"cnnc.train.loop"}
    assert found["cnnc.ir.ops"] == {"cnnc.train.loop"}
    assert upward_imports(found) == [
        "cnnc.ir.graph (ir) imports cnnc.train.loop (stages)",
        "cnnc.ir.ops (ir) imports cnnc.train.loop (stages)",
    ]
    assert circles(found) == [["cnnc.ir.graph", "cnnc.train.loop"]]
