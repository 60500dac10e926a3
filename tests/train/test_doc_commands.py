"""Every `cnnc` command line in README.md's and docs/*.md's code blocks is one the command line
takes: its command and flags parse with cnnc's own parser, so a renamed flag or command fails
here rather than in a reader's terminal. The ones that need no device, data or training (the
summaries, --help) run for real, on the repository's bundled specs. The docs' Python blocks
run in tests/train/test_doc_examples.py."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cnnc.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
FILES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
SHELL_BLOCKS = ("", "sh", "bash", "console", "shell")
# The commands that run quickly with no device, data or weights: run, not just parsed.
RUNNABLE = ("summary",)


def command_lines(name: str) -> list[str]:
    """The `cnnc ...` commands of a file's shell blocks: a leading `$ `, a commented-out
    command's `# ` and a launcher before `cnnc` (mpiexec, srun) dropped, comments cut off;
    usage synopses ([--flag] forms) left out, being no command to run."""
    text = (ROOT / name).read_text()
    found = []
    for block in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        if block.group(1) not in SHELL_BLOCKS:
            continue
        for line in block.group(2).splitlines():
            line = line.strip().removeprefix("$ ").removeprefix("# ")
            if not line.startswith(("cnnc ", "mpiexec ", "srun ")):
                continue  # output shown in the block, or prose
            words = shlex.split(line, comments=True)
            if "cnnc" not in words:
                continue
            words = words[words.index("cnnc"):]
            if any(w.startswith("[") for w in words):
                continue
            found.append(shlex.join(words))
    return found


COMMANDS = [(name, line) for name in FILES for line in command_lines(name)]


def test_the_readme_and_docs_show_commands():
    shown = {name for name, _ in COMMANDS}
    assert {"README.md", "docs/training.md", "docs/onnx.md", "docs/pictures.md"} <= shown
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize("name, line", COMMANDS, ids=[f"{n}: {c}" for n, c in COMMANDS])
def test_every_documented_command_parses(name, line, capsys):
    argv = shlex.split(line)[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        if argv == ["--help"] and stop.code == 0:
            return
        pytest.fail(f"{name}: `{line}` is refused by cnnc's parser: {capsys.readouterr().err}")
    assert getattr(args, "_run", None) is not None, f"{name}: `{line}` names no command"


@pytest.mark.parametrize("name, line", [(n, c) for n, c in COMMANDS
                                        if shlex.split(c)[1] in RUNNABLE])
def test_the_documented_summaries_run(name, line, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    argv = shlex.split(line)[1:]
    if not all((ROOT / a).is_file() for a in argv if a.endswith((".yaml", ".cnn", ".onnx"))):
        pytest.skip(f"`{line}` names a file of the reader's own")
    assert main(argv) == 0, capsys.readouterr().err
    assert "Total params" in capsys.readouterr().out
