"""DSL text to syntax tree: the Lark parser (dsl_grammar.py) and the transformer.

The transformer only builds `cnnc.frontend.ast` nodes with spans; it checks nothing but the
escapes of quoted strings. Syntax errors become SpecErrors in dsl_errors.py.
"""

from __future__ import annotations

import json
from typing import Any

from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from cnnc.errors import CnncError, Span, SpecError
from cnnc.frontend import ast
from cnnc.frontend.budget import check_dsl_text, counting_nesting
from cnnc.frontend.dsl_grammar import parser

# Bare words that mean a constant rather than a name.
CONSTANTS = {"true": True, "false": False, "none": None, "null": None}


def parse_program(text: str, file: str | None = None) -> ast.Program:
    """Parse DSL text; raises SpecError (file:line:col, source line, caret) on a syntax error."""
    from cnnc.frontend.dsl_errors import syntax_error

    check_dsl_text(text, file)
    try:
        with counting_nesting(text, file):
            tree = parser().parse(text)
    except UnexpectedInput as err:
        raise syntax_error(err, text, file) from None
    try:
        statements = _ToAst(file, text).transform(tree)
    except VisitError as err:  # Lark wraps what the transformer raises; never leak its type
        if isinstance(err.orig_exc, CnncError):
            raise err.orig_exc from None
        raise SpecError(f"cannot read this spec: {err.orig_exc}", file=file) from None
    return ast.Program(tuple(statements), file, text)


def _strip_key(text: str) -> str:
    """`KEY` tokens include the '=': 'strides =' -> 'strides'."""
    return text.rstrip("= \t")


class _ToAst(Transformer):
    """Lark tree -> ast nodes. Tokens carry their own positions; rules get them from `meta`."""

    def __init__(self, file: str | None, source: str):
        super().__init__(visit_tokens=False)
        self.file = file
        self.source = source

    # ------------------------------------------------------------ spans

    def _token_span(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column, self.source)

    def _meta_span(self, meta: Any) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 1, 1, source=self.source)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column,
                    self.source)

    def _name(self, tok: Token, text: str | None = None) -> ast.Name:
        return ast.Name(text if text is not None else str(tok), self._token_span(tok))

    # ------------------------------------------------------------ statements

    def start(self, children: list) -> list:
        return children

    @v_args(meta=True)
    def network(self, meta: Any, children: list) -> ast.NetworkName:
        tok = children[0]
        text = self._string(tok) if tok.type == "STRING" else str(tok)
        return ast.NetworkName(self._name(tok, text), self._meta_span(meta))

    @v_args(meta=True)
    def layer_stmt(self, meta: Any, children: list) -> ast.Layer:
        *label, layer = children
        return ast.Layer(layer.op, layer.args, label=label[0] if label else None,
                         inputs=layer.inputs, span=self._meta_span(meta))

    def label(self, children: list) -> ast.Name:
        return self._name(children[0])

    def ref(self, children: list) -> ast.Name:
        return self._name(children[0])

    @v_args(meta=True)
    def chained_layer(self, meta: Any, children: list) -> ast.Layer:
        op, *args = children
        return ast.Layer(self._name(op), tuple(args), span=self._meta_span(meta))

    @v_args(meta=True)
    def wired_layer(self, meta: Any, children: list) -> ast.Layer:
        call, *rest = children
        refs = tuple(c for c in rest if isinstance(c, ast.Name))
        args = tuple(c for c in rest if isinstance(c, ast.Argument))
        op = self._name(call, str(call)[:-1])
        return ast.Layer(op, args, inputs=refs, span=self._meta_span(meta))

    def positional(self, children: list) -> ast.Argument:
        return ast.Argument(None, children[0])

    def keyword(self, children: list) -> ast.Argument:
        key, value = children
        return ast.Argument(self._name(key, _strip_key(str(key))), value)

    keyword_arg = keyword

    @v_args(meta=True)
    def repeat(self, meta: Any, children: list) -> ast.Repeat:
        count, *body = children
        return ast.Repeat(ast.Value(int(count), self._token_span(count)), tuple(body),
                          self._meta_span(meta))

    @v_args(meta=True)
    def train(self, meta: Any, children: list) -> ast.Train:
        return ast.Train(tuple(children), self._meta_span(meta))

    @v_args(meta=True)
    def train_item(self, meta: Any, children: list) -> ast.TrainItem:
        key, *rest = children
        value = rest[0] if rest and isinstance(rest[0], ast.Value) else None
        keywords = tuple(c for c in rest if isinstance(c, ast.Argument))
        return ast.TrainItem(self._name(key), value, keywords, self._meta_span(meta))

    @v_args(meta=True)
    def outputs(self, meta: Any, children: list) -> ast.Outputs:
        return ast.Outputs(tuple(children), self._meta_span(meta))

    # ------------------------------------------------------------ values

    def int(self, children: list) -> ast.Value:
        tok = children[0]
        return ast.Value(int(tok), self._token_span(tok))

    def float(self, children: list) -> ast.Value:
        tok = children[0]
        return ast.Value(float(tok), self._token_span(tok))

    def dims(self, children: list) -> ast.Value:
        tok = children[0]
        return ast.Value(tuple(int(p) for p in str(tok).split("x")), self._token_span(tok))

    def word(self, children: list) -> ast.Value:
        tok = children[0]
        text = str(tok)
        value = CONSTANTS.get(text.lower(), text)
        return ast.Value(value, self._token_span(tok))

    def string(self, children: list) -> ast.Value:
        tok = children[0]
        return ast.Value(self._string(tok), self._token_span(tok))

    def _string(self, tok: Token) -> str:
        """A quoted string's text; escapes as in JSON."""
        try:
            return json.loads(str(tok))
        except ValueError:
            raise SpecError("bad escape in this string: use \\\\ for a backslash",
                            span=self._token_span(tok)) from None

    @v_args(meta=True)
    def tuple(self, meta: Any, children: list) -> ast.Value:
        return ast.Value(tuple(c.value for c in children), self._meta_span(meta))
