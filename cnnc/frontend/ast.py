"""The DSL's syntax tree: what the parser read, each node stamped with its span in the text.

dsl_parser.py builds it from Lark's parse tree; dsl.py turns it into layer declarations for
lowering. Nothing here checks meaning: that is lowering's job, which reports at these spans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnc.errors import Span


@dataclass(frozen=True)
class Value:
    """A literal: int, float, bool, None, str (a bare word or a quoted string) or a tuple."""

    value: Any
    span: Span


@dataclass(frozen=True)
class Name:
    """An identifier where a name is meant: a label, a reference, a setting's key."""

    text: str
    span: Span


@dataclass(frozen=True)
class Argument:
    """A layer argument: `key` is None for a positional value or bare word."""

    key: Name | None
    value: Value


@dataclass(frozen=True)
class Layer:
    """``label: op(inputs) args``; `inputs` None means the previous layer."""

    op: Name
    args: tuple[Argument, ...]
    label: Name | None = None
    inputs: tuple[Name, ...] | None = None
    span: Span | None = None


@dataclass(frozen=True)
class Repeat:
    """``repeat N { ... }``: the block's layers N times over."""

    count: Value
    body: tuple[Layer | Repeat, ...]
    span: Span


@dataclass(frozen=True)
class TrainItem:
    """``key value kw=v ...`` inside the train block; `value` None when only keywords follow."""

    key: Name
    value: Value | None
    keywords: tuple[Argument, ...]
    span: Span


@dataclass(frozen=True)
class Train:
    items: tuple[TrainItem, ...]
    span: Span


@dataclass(frozen=True)
class Outputs:
    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class NetworkName:
    name: Name
    span: Span


Statement = NetworkName | Layer | Repeat | Train | Outputs


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
    file: str | None
    source: str
