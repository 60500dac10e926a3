"""`load_spec`: every way in to one Graph (a file, spec text, a dict, a Network or a Graph).

Files are read by extension (.cnn is the DSL; .yaml and .yml are YAML; .onnx is an ONNX
model), text without one by sniffing. A path that does not exist may name a spec bundled with
cnnc (`fashion`, `specs/fashion.yaml`), so the examples work from an installed package as from a
checkout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from cnnc.errors import SpecError, did_you_mean
from cnnc.files import check_regular, read_capped
from cnnc.input_limits import MAX_SPEC_BYTES, size_text
from cnnc.ir.graph import Graph

FORMATS = {".cnn": "dsl", ".yaml": "yaml", ".yml": "yaml"}
ONNX_SUFFIX = ".onnx"  # a model file (cnnc/frontend/onnx_import.py), not spec text
YAML_START = re.compile(r"(network|input|layers|outputs|train)[ \t]*:([ \t]|$)|\{|---|- ")


def load_spec(spec: Any, *, name: str | None = None) -> Graph:
    """The graph of `spec`: a path (str or PathLike), DSL or YAML text, a mapping such as YAML
    gives, a cnnc.Network, or a Graph (returned as it is). `name` renames the network."""
    from cnnc.frontend.network import Network

    if isinstance(spec, Graph):
        graph = spec
    elif isinstance(spec, Network):
        graph = spec.build()
    elif isinstance(spec, Mapping):
        from cnnc.frontend.yaml_spec import mapping_to_graph

        graph = mapping_to_graph(spec)
    elif isinstance(spec, os.PathLike):
        graph = load_file(spec)
    elif isinstance(spec, str):
        graph = load_text(spec) if _is_text(spec) else load_file(spec)
    else:
        raise SpecError(f"cannot load a spec from a {type(spec).__name__}: give a file path, "
                        "spec text, a dict, a cnnc.Network or a Graph")
    return graph if name is None or name == graph.name else graph.replace(name=name)


def _is_text(spec: str) -> bool:
    """Spec text rather than a path: several lines, or one line that is not a bare file name."""
    if "\n" in spec or "\0" in spec or len(spec) > MAX_PATH_CHARS:
        return True
    suffix = Path(spec).suffix.lower()
    if suffix in FORMATS or suffix == ONNX_SUFFIX or os.sep in spec or _exists(spec):
        return False
    return not re.fullmatch(r"[\w.\-]+", spec.strip())


MAX_PATH_CHARS = 4096  # PATH_MAX on Linux: one line longer than this is text, not a file name


def _exists(spec: str) -> bool:
    try:
        return Path(spec).exists()
    except (OSError, ValueError):  # a name too long for the filesystem is not a file's
        return False


def sniff_format(text: str) -> str:
    """'yaml' or 'dsl', from the first line that is not blank or a comment."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return "yaml" if YAML_START.match(stripped) else "dsl"
    return "dsl"


def load_text(text: str, *, file: str | None = None, format: str | None = None) -> Graph:
    """Parse spec text; `format` is 'dsl' or 'yaml' (default: sniffed)."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is {len(text):,} characters long, more than the "
                        f"{size_text(MAX_SPEC_BYTES)} cnnc reads", file=file)
    fmt = format or sniff_format(text)
    if fmt == "yaml":
        from cnnc.frontend.yaml_spec import load_yaml

        return load_yaml(text, file=file)
    if fmt == "dsl":
        from cnnc.frontend.dsl import load_dsl

        return load_dsl(text, file=file)
    raise SpecError(f"unknown spec format {fmt!r}; expected 'dsl' or 'yaml'")


def load_file(path: str | os.PathLike) -> Graph:
    """Read a spec file; a missing one may be a bundled spec (see the module doc)."""
    label = os.fspath(path)
    p = Path(label)
    if p.suffix.lower() == ONNX_SUFFIX:
        from cnnc.frontend.onnx_import import load_onnx

        if _exists(label):
            check_regular(label, SpecError, "ONNX model")  # not a FIFO or a device
        return load_onnx(p)
    if _exists(label):
        data = read_capped(label, MAX_SPEC_BYTES, SpecError, "spec file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError("not a spec: the file is not UTF-8 text", file=label) from None
    else:
        text = bundled_text(p)
        if text is None:
            bundled = bundled_specs()
            hint = did_you_mean(p.stem, [Path(n).stem for n in bundled])
            if hint is None and bundled:
                hint = "the bundled specs are " + ", ".join(bundled)
            raise SpecError(f"no such file: {label}", hint=hint)
    return load_text(text, file=label, format=FORMATS.get(p.suffix.lower()))


def bundled_specs() -> list[str]:
    """File names of the example specs that ship with cnnc (the checkout's specs/ folder)."""
    try:
        folder = resources.files("cnnc.specs")
        return sorted(f.name for f in folder.iterdir() if Path(f.name).suffix in FORMATS)
    except (ModuleNotFoundError, FileNotFoundError):
        return []


def bundled_text(path: Path) -> str | None:
    """The text of the bundled spec `path` names: `fashion.yaml`, `specs/fashion.yaml` or
    `fashion` (YAML first); None if it names none, or has folders other than specs/."""
    if path.parent not in (Path("."), Path("specs")):
        return None
    names = bundled_specs()
    wanted = ([path.name] if path.suffix else
              [path.name + suffix for suffix in (".yaml", ".yml", ".cnn")])
    for name in wanted:
        if name in names:
            return resources.files("cnnc.specs").joinpath(name).read_text(encoding="utf-8")
    return None


__all__ = ["bundled_specs", "load_file", "load_spec", "load_text", "sniff_format"]
