"""Argument types for op definitions: each checks a raw value from a spec and returns it normalised.

Messages follow Keras' style ("Expected a strictly positive integer. Received filters=0."), so the
front ends only add the location (DSL span or YAML key path).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cnnc.ir.activations import ALIASES as ACTIVATION_ALIASES
from cnnc.ir.activations import NAMES as ACTIVATION_NAMES

# The activation names an `activation` argument accepts: the activations table's rows, and
# (ACTIVATION_WORDS) their aliases, which `activation_choice` reads as the row's name.
ACTIVATIONS = ACTIVATION_NAMES
ACTIVATION_WORDS = ACTIVATION_NAMES + tuple(ACTIVATION_ALIASES)
PADDINGS = ("valid", "same")


class ArgError(ValueError):
    """A bad argument value; the caller adds where it came from."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Arg:
    """One argument of an op: its Keras name, a checker, a default, whether it may be positional.

    `positional` args can be given by position in the DSL shorthand (``conv2d 64 3``), in the
    order they are declared. `words` args are bare words that the DSL recognises by value alone
    (``relu``, ``same``): their checker is a `choice`.
    """

    name: str
    check: Callable[[str, Any], Any]
    default: Any = REQUIRED
    positional: bool = False
    words: tuple[str, ...] = ()
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class Attrs(Mapping):
    """An immutable, hashable mapping of checked argument values (ints, floats, strs, tuples)."""

    __slots__ = ("_dict", "_items")

    def __init__(self, items: Mapping[str, Any] | None = None, **kw: Any):
        d = dict(items or {})
        d.update(kw)
        self._items = tuple(sorted(d.items()))
        self._dict = dict(self._items)

    def __getitem__(self, key: str) -> Any:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Attrs):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._dict == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return "Attrs(" + ", ".join(f"{k}={v!r}" for k, v in self._items) + ")"

    def replace(self, **kw: Any) -> Attrs:
        d = dict(self._dict)
        d.update(kw)
        return Attrs(d)


def _received(name: str, value: Any) -> str:
    return f"Received {name}={value!r}."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(name: str, value: Any) -> int:
    if not _is_int(value) or value <= 0:
        raise ArgError(f"Expected a strictly positive integer. {_received(name, value)}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise ArgError(f"Expected a non-negative integer. {_received(name, value)}")
    return int(value)


def integer(name: str, value: Any) -> int:
    if not _is_int(value):
        raise ArgError(f"Expected an integer. {_received(name, value)}")
    return int(value)


def pair(name: str, value: Any) -> tuple[int, int]:
    """A positive integer or a pair of them (Keras' kernel_size, strides, pool_size)."""
    both = (value, value) if _is_int(value) else value  # errors report `value` as written
    if (
        isinstance(both, (tuple, list))
        and len(both) == 2
        and all(_is_int(v) and v > 0 for v in both)
    ):
        return (int(both[0]), int(both[1]))
    raise ArgError(
        f"Expected a positive integer or a pair of positive integers. {_received(name, value)}"
    )


def optional_pair(name: str, value: Any) -> tuple[int, int] | None:
    return None if value is None else pair(name, value)


def shape(name: str, value: Any) -> tuple[int, ...]:
    """A tensor shape without the batch dimension, e.g. (28, 28, 1)."""
    if _is_int(value):
        value = (value,)
    if isinstance(value, (tuple, list)) and len(value) >= 1 and all(
        _is_int(v) and v > 0 for v in value
    ):
        return tuple(int(v) for v in value)
    raise ArgError("Expected a shape of positive integers such as 28x28x1. "
                   + _received(name, value))


def any_shape(name: str, value: Any) -> tuple[int, ...]:
    """A shape that may be empty (a scalar)."""
    if isinstance(value, (tuple, list)) and all(_is_int(v) and v > 0 for v in value):
        return tuple(int(v) for v in value)
    raise ArgError(f"Expected a tuple of positive integers. {_received(name, value)}")


def real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgError(f"Expected a number. {_received(name, value)}")
    return float(value)


def positive_real(name: str, value: Any) -> float:
    v = real(name, value)
    if not v > 0:
        raise ArgError(f"Expected a strictly positive number. {_received(name, value)}")
    return v


def finite_real(name: str, value: Any) -> float:
    v = real(name, value)
    if not math.isfinite(v):
        raise ArgError(f"Expected a finite number. {_received(name, value)}")
    return v


def non_negative_real(name: str, value: Any) -> float:
    v = finite_real(name, value)
    if v < 0:
        raise ArgError(f"Expected a number >= 0. {_received(name, value)}")
    return v


def optional_non_negative_real(name: str, value: Any) -> float | None:
    return None if value is None else non_negative_real(name, value)


def unit_interval(name: str, value: Any) -> float:
    """A number in [0, 1): dropout rates, momenta."""
    v = real(name, value)
    if not 0.0 <= v < 1.0:
        raise ArgError(f"Expected a number in [0, 1). {_received(name, value)}")
    return v


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ArgError(f"Expected true or false. {_received(name, value)}")
    return value


def text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ArgError(f"Expected a string. {_received(name, value)}")
    return value


def choice(*options: str, none_as: str | None = None) -> Callable[[str, Any], str]:
    """A lower-case name from a fixed set; `none_as` maps a YAML null to a default name."""

    def check(name: str, value: Any) -> str:
        if value is None and none_as is not None:
            return none_as
        if isinstance(value, str) and value.lower() in options:
            return value.lower()
        from cnnc.errors import did_you_mean

        hint = did_you_mean(str(value), options) if isinstance(value, str) else None
        msg = f"Expected one of {', '.join(repr(o) for o in options)}. {_received(name, value)}"
        if hint:
            msg += f" ({hint})"
        raise ArgError(msg)

    check.options = options  # type: ignore[attr-defined]
    return check


def activation_choice(none_as: str | None = None) -> Callable[[str, Any], str]:
    """An activation name of the table, or an alias of one (swish: silu), as the row's name."""
    inner = choice(*ACTIVATION_WORDS, none_as=none_as)

    def check(name: str, value: Any) -> str:
        word = inner(name, value)
        return ACTIVATION_ALIASES.get(word, word)

    check.options = ACTIVATION_WORDS  # type: ignore[attr-defined]
    return check


def optional_int(name: str, value: Any) -> int | None:
    return None if value is None else integer(name, value)


def part_attrs(name: str, value: Any) -> Attrs:
    """A fused op's attribute holding one of its parts' attributes, already checked by that
    part's own op (the fusion passes build them; a spec never writes them)."""
    if not isinstance(value, Attrs):
        raise ArgError(f"Expected a part's checked attributes. Received {name}={value!r}.")
    return value


def check_args(op_name: str, args: tuple[Arg, ...], given: Mapping[str, Any]) -> Attrs:
    """Check the given keyword values against an op's args; fill defaults; reject unknown names.

    Raises ArgError naming the argument. Unknown names get a 'did you mean' hint.
    """
    from cnnc.errors import did_you_mean

    known = {a.name: a for a in args}
    for key in given:
        if key not in known:
            hint = did_you_mean(key, known)
            msg = f"unknown argument '{key}' for {op_name}"
            if hint:
                msg += f"; {hint}"
            elif known:
                msg += f" (it takes {', '.join(known)})"
            raise ArgError(msg)
    out = {}
    for a in args:
        if a.name in given:
            out[a.name] = a.check(a.name, given[a.name])
        elif a.required:
            raise ArgError(f"{op_name} needs the argument '{a.name}'")
        else:
            out[a.name] = a.default
    return Attrs(out)
