"""The DSL and YAML examples in docs/dsl.md and README.md parse, and say what the text says."""

from __future__ import annotations

import re

import pytest
from frontend_helpers import SPECS

from cnnc.frontend.dsl import load_dsl
from cnnc.frontend.spec import load_spec
from cnnc.frontend.yaml_spec import load_yaml
from cnnc.ir.ops import OPS

ROOT = SPECS.parent


def blocks(name: str, language: str) -> list[str]:
    """The fenced code blocks of a Markdown file in `language` ('' for unmarked ones)."""
    found, current, lang = [], None, ""
    for line in (ROOT / name).read_text().splitlines():
        if line.startswith("```") and current is None:
            current, lang = [], line[3:].strip()
        elif line.startswith("```"):
            if lang == language:
                found.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return found


def dsl_blocks() -> list[str]:
    """Unmarked blocks that are DSL: not shell commands, file trees or error messages."""
    return [b for name in ("docs/dsl.md", "README.md") for b in blocks(name, "")
            if not re.match(r"(bash|cnnc|specs/|\S+/\s)", b)]


@pytest.mark.parametrize("text", dsl_blocks())
def test_dsl_examples_parse(text):
    if not re.search(r"^\s*(\w+: )?input ", text, re.MULTILINE):
        text = "input 28x28x1\n" + text  # a fragment
    assert load_dsl(text).nodes


def test_the_readme_example_is_the_seed_model():
    seed = next(b for b in blocks("README.md", "") if b.startswith("network fashion"))
    graph = load_dsl(seed)
    assert graph.param_count() == 1_413_834
    expected = load_spec(SPECS / "fashion.cnn")
    assert graph.nodes == expected.nodes


@pytest.mark.parametrize("text", blocks("docs/dsl.md", "yaml"))
def test_yaml_examples_parse(text):
    assert load_yaml(text).nodes


def test_repeat_example_means_what_the_doc_says():
    graph = load_dsl("input 28x28x1\nx: conv2d 16 3 same\nrepeat 2 {\n"
                     "    a: conv2d 16 3 relu same\n    b: conv2d 16 3 same\n    s: add(a, b)\n}")
    assert [n.name for n in graph.nodes][2:] == ["a_1", "b_1", "s_1", "a_2", "b_2", "s_2"]
    assert graph.node("s_2").inputs == ("a_2", "b_2") and graph.node("a_2").inputs == ("s_1",)


def test_layer_table_lists_every_layer_and_alias():
    doc = (ROOT / "docs/dsl.md").read_text()
    for op in OPS.values():
        if op.group == "layer":
            assert f"| `{op.name}` |" in doc
            for alias in op.aliases:
                if alias.lower() != op.name:
                    assert f"`{alias}`" in doc, alias
