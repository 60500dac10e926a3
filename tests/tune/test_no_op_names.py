"""The tuner knows no op or algorithm by name: cnnc/tune/ reads them from the OpenCL backend's
registry (cnnc/backends/opencl/algorithms.py), so a new algorithm or tunable op is one
registration there. Fails when a string in the tuner names one."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import cnnc.tune
from cnnc.backends.opencl.algorithms import REGISTERED

EXEMPT: tuple[str, ...] = ()  # statements whose strings may name ops (none since OpDef.base)


def _named() -> set[str]:
    names = set()
    for a in REGISTERED:
        names |= {a.op, a.name, *a.keys, *a.tile_keys}
    return names


def _strings(path: Path) -> list[tuple[int, str]]:
    source = path.read_text()
    lines = source.splitlines()
    found, exempt = [], False
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NEWLINE:
            exempt = False
        elif tok.type == tokenize.NAME and tok.string in EXEMPT and \
                lines[tok.start[0] - 1].startswith(tok.string):
            exempt = True
        elif tok.type == tokenize.STRING and not exempt and not tok.string.startswith('"""'):
            found.append((tok.start[0], tok.string))
    return found


def test_the_tuner_names_no_op_and_no_algorithm():
    names = _named()
    assert {"conv2d", "winograd", "phases", "im2col"} <= names  # the check reads the registry
    folder = Path(cnnc.tune.__file__).parent
    hits = [f"{path.name}:{line}: {text}" for path in sorted(folder.glob("*.py"))
            for line, text in _strings(path)
            if names & set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))]
    assert not hits, "the tuner names ops or algorithms:\n" + "\n".join(hits)
