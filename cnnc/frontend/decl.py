"""A layer as a front end declares it, before lowering (lower.py) checks and places it.

A leaf of the front ends: lower.py and arguments.py both read declarations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnc.errors import Span

PREVIOUS = None  # LayerDecl.inputs value meaning "the layer declared just before"


@dataclass(eq=False)
class LayerDecl:
    """One layer as written: op name, positional and keyword arguments, name, inputs, location.

    `inputs` None means the previous layer (a chain); a list names layers, each by its name or
    by its `LayerDecl` (the Python builder's handles, which may be unnamed until lowering).
    `arg_spans` and `arg_paths` locate individual argument values (keys are argument names, or
    '#<i>' for the i-th positional value) so that a bad value is reported where it was written;
    `key_spans` locate the keywords themselves (for unknown-argument errors).
    """

    op: str
    positional: Sequence[Any] = ()
    keywords: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    inputs: Sequence[str | LayerDecl] | None = PREVIOUS
    span: Span | None = None
    path: str | None = None
    arg_spans: Mapping[str, Span] = field(default_factory=dict)
    arg_paths: Mapping[str, str] = field(default_factory=dict)
    name_span: Span | None = None
    input_spans: Sequence[Span | None] = ()
    key_spans: Mapping[str, Span] = field(default_factory=dict)
