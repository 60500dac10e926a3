"""The DSL's Lark parser, built from the packaged grammar the first time it is needed.

The grammar is package data (grammar.lark beside this file), so an installed cnnc finds it. A
leaf of the DSL front end: dsl_parser.py parses with it, and dsl_errors.py reads its states and
terminals to say what was expected.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from lark import Lark

from cnnc.frontend.budget import LEXER_CALLBACKS

GRAMMAR = "grammar.lark"


@cache
def parser() -> Lark:
    """The LALR parser for the DSL, built from the packaged grammar the first time it is needed."""
    text = resources.files("cnnc.frontend").joinpath(GRAMMAR).read_text(encoding="utf-8")
    return Lark(text, parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=False, lexer_callbacks=LEXER_CALLBACKS)
