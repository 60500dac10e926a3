"""A layer's arguments as written (positional values, bare words, keywords) onto its op's.

Lowering calls `resolve_args` for each declaration. Errors are located at the argument value (or
keyword) they are about, as precisely as the front end recorded it: a DSL span, a YAML key path.
"""

from __future__ import annotations

import re
from typing import Any

from cnnc.errors import SpecError, did_you_mean
from cnnc.frontend.decl import LayerDecl
from cnnc.ir.args import ArgError, Attrs
from cnnc.ir.ops import OpDef


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _arg_error(decl: LayerDecl, label: str, key: str, message: str,
               hint: str | None = None, *, at_key: bool = False) -> SpecError:
    """An argument error located at the value (or keyword) as precisely as the front end knows.

    Key-path errors (YAML, dicts) are named by the path; text errors by the layer's name.
    """
    span = (decl.key_spans.get(key) if at_key else None) or decl.arg_spans.get(key) or decl.span
    path = decl.arg_paths.get(key)
    if path is None and decl.path is not None:
        path = decl.path if key.startswith("#") or not key else f"{decl.path}.{key}"
    if path is None:
        message = f"{label}: {message}"
    return SpecError(message, span=span, path=path, hint=hint)


def resolve_args(decl: LayerDecl, op: OpDef, label: str | None = None) -> Attrs:
    """Positional values and bare words mapped onto the op's arguments, then checked.

    A bare word (``relu``, ``same``) goes to the argument whose `words` contain it; other
    positional values fill the op's positional arguments in order. `label` is the layer's name,
    for messages.
    """
    label = label or decl.name or op.name
    given: dict[str, Any] = {}
    where: dict[str, str] = {}  # arg name -> key in arg_spans/arg_paths
    slots = [a for a in op.args if a.positional]
    for i, value in enumerate(decl.positional):
        key = f"#{i}"
        target = None
        if isinstance(value, str):
            for a in op.args:
                if a.words and value.lower() in a.words and a.name not in given:
                    target = a
                    break
        if target is None:
            while slots and slots[0].name in given:
                slots.pop(0)
            if not slots:
                raise _too_many(decl, op, label, key, value)
            target = slots.pop(0)
        given[target.name] = value
        where[target.name] = key
    for k, value in decl.keywords.items():
        if k in given:
            raise _arg_error(decl, label, k, f"argument '{k}' is given twice (once by position)",
                             at_key=True)
        given[k] = value
        where[k] = k
    try:
        return op.check_attrs(given)
    except ArgError as err:
        # Point at the argument the message names, if we can tell which.
        msg = str(err)
        m = re.match(r"unknown argument '([^']+)'", msg)
        if m:
            return _raise_unknown(decl, op, label, m.group(1))
        key = next((where[k] for k in given if f"{k}=" in msg or f"'{k}'" in msg), "")
        raise _arg_error(decl, label, key, msg) from None


def _too_many(decl: LayerDecl, op: OpDef, label: str, key: str, value: Any) -> SpecError:
    positional = [a.name for a in op.args if a.positional]
    words = sorted({w for a in op.args for w in a.words})
    if isinstance(value, str) and words:
        hint = did_you_mean(value, words)
        return _arg_error(decl, label, key, f"'{value}' is not a word {op.name} understands "
                          f"(it takes {', '.join(words)})", hint)
    if positional:
        takes = f"{plural(len(positional), 'positional argument')} ({', '.join(positional)})"
    else:
        takes = "no positional arguments"
    return _arg_error(decl, label, key, f"{op.name} takes {takes}; {value!r} is one too many")


def _raise_unknown(decl: LayerDecl, op: OpDef, label: str, key: str) -> Attrs:
    known = [a.name for a in op.args]
    # In a key-path spec (YAML, dict) the layer's name and inputs are keys beside its arguments.
    candidates = known + ["name", "inputs"] if decl.path is not None else known
    hint = did_you_mean(key, candidates) or (
        f"{op.name} takes {', '.join(known)}" if known else f"{op.name} takes no arguments")
    raise _arg_error(decl, label, key, f"unknown argument '{key}' for {op.name}", hint,
                     at_key=True) from None


__all__ = ["plural", "resolve_args"]
