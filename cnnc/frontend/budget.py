"""Bounds on spec text, checked before and while it is parsed (the limits are in cnnc.input_limits).

Parsing costs time and memory per token (Lark builds a tree; PyYAML composes nodes), and both
parsers recurse per level of nesting. So before a DSL text is parsed its lines and tokens are
counted at C speed, and while it is parsed the lexer tracks how deep brackets nest. A YAML
document's events are read before it is composed, counting every value (an alias counts as all
the values it stands for, so a "billion laughs" document is refused after a few thousand) and
its depth. What is over a bound is refused with a located SpecError, long before it could hang.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from cnnc.errors import Span, SpecError
from cnnc.input_limits import MAX_DSL_TOKENS, MAX_LAYERS, MAX_NESTING, MAX_YAML_NODES

# ------------------------------------------------------------------ DSL

# A layer needs a line (or a ';') of its own, so a spec within MAX_LAYERS has about as many;
# 2,000 more leave room for `repeat` blocks, the train block and the outputs.
MAX_DSL_LINES = MAX_LAYERS + 2_000
_CONTENT_LINE = re.compile(r"^[ \t]*[^\s#]", re.MULTILINE)
_COMMENT = re.compile(r"#[^\n]*")
# Roughly the DSL's tokens: a word or number (DIMS, floats, names with dots and dashes), or one
# punctuation character. Strings count a word at a time, which only over-counts.
_TOKENISH = re.compile(r"[A-Za-z0-9_.+\-]+|[^\sA-Za-z0-9_.+\-]")


def check_dsl_text(text: str, file: str | None) -> None:
    """Refuse DSL text with more lines or tokens than any spec within the limits has."""
    lines = len(_CONTENT_LINE.findall(text)) + text.count(";")
    if lines > MAX_DSL_LINES:
        raise SpecError(f"the spec has {lines:,} statements; cnnc reads at most "
                        f"{MAX_DSL_LINES:,} (a network has at most {MAX_LAYERS:,} layers)",
                        file=file)
    tokens = _TOKENISH.subn("", _COMMENT.sub("", text))[1]
    if tokens > MAX_DSL_TOKENS:
        raise SpecError(f"the spec has about {tokens:,} words and symbols; cnnc reads at most "
                        f"{MAX_DSL_TOKENS:,}", file=file)


class _Nesting(threading.local):
    """How deep brackets are open in the text being parsed (None: not counting)."""

    def __init__(self) -> None:
        self.depth: int | None = None
        self.file: str | None = None
        self.source: str = ""


_NESTING = _Nesting()
OPENING = ("LPAR", "LBRACE", "CALL")  # CALL is a layer name with its '(' attached
CLOSING = ("RPAR", "RBRACE")


def _open(token: Any) -> Any:
    if _NESTING.depth is not None:
        _NESTING.depth += 1
        if _NESTING.depth > MAX_NESTING:
            span = Span(_NESTING.file, token.line, token.column, source=_NESTING.source)
            raise SpecError(f"brackets and repeat blocks nest more than {MAX_NESTING} deep",
                            span=span)
    return token


def _close(token: Any) -> Any:
    if _NESTING.depth is not None:
        _NESTING.depth = max(_NESTING.depth - 1, 0)
    return token


LEXER_CALLBACKS = {**{name: _open for name in OPENING}, **{name: _close for name in CLOSING}}


@contextmanager
def counting_nesting(text: str, file: str | None) -> Iterator[None]:
    """Count bracket depth in the lexer (LEXER_CALLBACKS) while `text` is parsed."""
    _NESTING.depth, _NESTING.file, _NESTING.source = 0, file, text
    try:
        yield
    finally:
        _NESTING.depth, _NESTING.file, _NESTING.source = None, None, ""


# ------------------------------------------------------------------ YAML


def check_yaml_events(text: str, file: str | None, loader: type) -> None:
    """Refuse a YAML text whose values, counted as expanded through aliases, are more than
    MAX_YAML_NODES or nest more than MAX_NESTING deep, or that has an alias inside itself.

    Reads the event stream only (libyaml's when available: fast and flat), so the check costs
    little against composing, and nothing it refuses is ever composed. PyYAML shares an aliased
    node rather than copying it, but everything that walks the result (the key-path walk, the
    conversion of lists to tuples) visits it once per reference, hence the expanded count.
    """
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (values, depth) of what it names
    stack: list[list[Any]] = []  # open collections: [anchor, total before it, deepest child]
    total = 0

    def refuse(message: str, event: Any) -> SpecError:
        mark = event.start_mark
        span = Span(file, mark.line + 1, mark.column + 1, source=text) if mark else None
        return SpecError(message, span=span, file=file)

    def add(values: int, depth: int, event: Any) -> None:
        nonlocal total
        total += values
        if total > MAX_YAML_NODES:
            raise refuse(f"the YAML document holds more than {MAX_YAML_NODES:,} values "
                         "(an alias counts as every value it repeats)", event)
        if len(stack) + depth > MAX_NESTING + 1:
            raise refuse(f"lists and mappings nest more than {MAX_NESTING} deep", event)
        if stack:
            stack[-1][2] = max(stack[-1][2], depth)

    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.ScalarEvent):
            add(1, 1, event)
            if event.anchor is not None:
                sizes[event.anchor] = (1, 1)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            before = total
            add(1, 1, event)
            stack.append([event.anchor, before, 0])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, before, deepest = stack.pop()
            if anchor is not None:
                sizes[anchor] = (total - before, 1 + deepest)
            if stack:
                stack[-1][2] = max(stack[-1][2], 1 + deepest)
        elif isinstance(event, yaml.AliasEvent):
            if any(frame[0] == event.anchor for frame in stack):
                raise refuse(f"the alias *{event.anchor} refers to a value that contains it",
                             event)
            if event.anchor in sizes:  # an undefined alias is left to the composer's message
                values, depth = sizes[event.anchor]
                add(values, depth, event)


__all__ = ["LEXER_CALLBACKS", "check_dsl_text", "check_yaml_events", "counting_nesting"]
