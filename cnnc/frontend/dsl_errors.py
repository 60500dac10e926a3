"""DSL syntax errors in words: Lark's exceptions become located SpecErrors a person can act on.

What was found comes from the token ("unexpected '}'"). A text that ends inside a block says
which block is left open. Otherwise what was expected is classified by example, in the manner
of Lark's examples/advanced/error_reporting_lalr.py: each malformed snippet below fails in some
parser state, and an error in the same state gets that snippet's message. States with no
example fall back to a list of what the parser would have accepted there.
"""

from __future__ import annotations

from functools import cache

from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from cnnc.errors import Span, SpecError
from cnnc.frontend.dsl_grammar import parser

# message -> malformed snippets that fail where the message applies (tests check each one).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "expected a layer": (
        "repeat 2 { }",
        "repeat 2 {\n}",
        "input 1\nrepeat 2 {\n\n}",
    ),
    "expected a layer or a statement (network, repeat, train, output)": (
        "}",
        "{",
        ": dense 3",
        "=",
    ),
    "expected a layer after the label": (
        "c1:",
        "c1: }",
        "c1: 3",
    ),
    "expected the repeat count, as in 'repeat 2 { ... }'": (
        "repeat { dense 1 }",
        "repeat x { dense 1 }",
    ),
    "expected '{' after the repeat count": (
        "repeat 2 dense 1",
        "repeat 2",
    ),
    "expected a value after '='": (
        "dense 10 activation=",
        "dense 10 activation=\n",
        "dense 10 activation= }",
        "train { optimizer adam learning_rate= }",
    ),
    "expected a layer name": (
        "add(3, a)",
        "add(a, )",
        "add(a, 3)",
        "output",
        "output a,",
        "output 3",
    ),
    "expected ',' or ')' in the list of inputs": (
        "add(a b)",
        "add(a",
        "add(a, b",
    ),
    "expected '{' after 'train'": (
        "train epochs 10",
        "train",
    ),
    "expected a value for this setting, as in 'epochs 10'": (
        "train { epochs }",
        "train { epochs\n}",
    ),
    "expected a setting (such as 'epochs 10') or '}'": (
        "train { 10 }",
        "train { = }",
    ),
    "expected the network's name": (
        "network",
        "network 3",
    ),
    "expected another argument, or a new line before the next layer": (
        "dense 10 }",
        "dense 10 )",
        "dense 10 :",
        "flatten )",
        "repeat 2 { dense 1 ) }",
    ),
    "expected a value or ')' in the tuple": (
        "dense 1 kernel_size=(3,",
        "dense 1 kernel_size=(",
    ),
    "expected ',' or ')' in the tuple": (
        "dense 1 kernel_size=(3",
        "dense 1 kernel_size=(3 4)",
    ),
}

# How the grammar's terminals read in a message.
TERMINAL_WORDS = {
    "NAME": "a name",
    "CALL": "a layer with inputs, as in add(a, b)",
    "INT": "a number",
    "FLOAT": "a number",
    "DIMS": "a shape such as 28x28x1",
    "STRING": "a quoted string",
    "KEY": "a keyword argument such as strides=2",
    "_SEP": "a new line",
    "$END": "the end of the text",
}


@cache
def _state_messages() -> dict[int, str]:
    """Parser state -> message, from the examples (built on the first syntax error)."""

    table: dict[int, str] = {}
    for message, snippets in EXAMPLES.items():
        for snippet in snippets:
            state = example_state(snippet)
            if state is not None:
                table.setdefault(state, message)
    return table


def example_state(snippet: str) -> int | None:
    """The LALR state in which `snippet` fails to parse, or None if it parses."""
    try:
        parser().parse(snippet)
    except UnexpectedInput as err:
        return _state_id(err)
    return None


def _state_id(err: UnexpectedInput) -> int | None:
    state = getattr(err, "state", None)
    return getattr(state, "position", state) if state is not None else None


def expected_message(err: UnexpectedInput) -> str:
    """What the parser wanted where it stopped, in words."""
    message = _state_messages().get(_state_id(err))
    if message is not None:
        return message
    if isinstance(err, UnexpectedToken):
        accepted = err.accepts or err.expected
    else:
        accepted = getattr(err, "allowed", None) or ()
    return "expected " + _describe_terminals(accepted)


def _describe_terminals(names) -> str:
    words: list[str] = []
    for name in sorted(names):
        word = TERMINAL_WORDS.get(name)
        if word is None:
            try:
                pattern = parser().get_terminal(name).pattern
                word = f"'{pattern.value}'" if pattern.type == "str" else name.lower()
            except KeyError:
                word = name.lower()
        if word not in words:
            words.append(word)
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _unclosed_brace(text: str) -> int | None:
    """The line of the last '{' that is never closed, outside comments and strings."""
    stack: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        in_string = False
        for i, ch in enumerate(line):
            if in_string:
                in_string = not (ch == '"' and line[i - 1] != "\\")
            elif ch == '"':
                in_string = True
            elif ch == "#":
                break
            elif ch == "{":
                stack.append(number)
            elif ch == "}" and stack:
                stack.pop()
    return stack[-1] if stack else None


def _end_position(text: str) -> tuple[int, int]:
    """Line and column just after the last non-blank character: where 'end of text' is."""
    lines = text.rstrip().splitlines() or [""]
    return len(lines), len(lines[-1]) + 1


def syntax_error(err: UnexpectedInput, text: str, file: str | None) -> SpecError:
    """A SpecError at the place Lark stopped, saying what it found and what it expected."""
    line, column = err.line, err.column
    if isinstance(err, UnexpectedCharacters):
        found = f"unexpected character {err.char!r}"
    elif isinstance(err, UnexpectedToken) and err.token.type == "$END":
        found = "unexpected end of text"
        line, column = _end_position(text)
        opened = _unclosed_brace(text)
        if opened is not None and "RBRACE" in (err.accepts or err.expected):
            return SpecError(f"{found}; expected '}}' to close the block opened on line "
                             f"{opened}", span=Span(file, line, column, source=text))
    elif isinstance(err, UnexpectedToken) and err.token.type == "_SEP" and err.token != ";":
        found = "unexpected end of line"
    elif isinstance(err, UnexpectedToken):
        found = f"unexpected '{err.token}'"
    else:
        found = "syntax error"
    if not isinstance(line, int) or not isinstance(column, int):
        line, column = _end_position(text)
    return SpecError(f"{found}; {expected_message(err)}",
                     span=Span(file, line, column, source=text))
