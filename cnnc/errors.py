"""Errors for every stage: one exception type that knows where in the user's text it points.

Front ends stamp a `Span` (file, line, column) or a YAML key path on what they build; later stages
copy them along, so an error found deep in shape inference still renders as
``specs/x.cnn:4:9: message`` with the source line and a caret under the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A place in a spec: 1-based line and column; `source` is the whole text, for rendering."""

    file: str | None
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    source: str | None = field(default=None, compare=False, repr=False, hash=False)

    def location(self) -> str:
        return f"{self.file or '<string>'}:{self.line}:{self.column}"

    def source_line(self) -> str | None:
        if self.source is None:
            return None
        lines = self.source.splitlines()
        if 1 <= self.line <= len(lines):
            return lines[self.line - 1]
        return None


class CnncError(Exception):
    """The one exception type cnnc raises for anything a user can fix.

    Attributes: `message` (one sentence), `span` (a `Span` into DSL or YAML text, or None), `path`
    (a YAML/dict key path such as ``layers[3].kernel_size``, or None), `file` (the spec file when
    known), `hint` (a suggestion such as "did you mean 'conv2d'?"), `errors` (further errors
    collected with this one).
    """

    exit_status = 2

    def __init__(
        self,
        message: str,
        *,
        span: Span | None = None,
        path: str | None = None,
        file: str | None = None,
        hint: str | None = None,
        errors: Sequence[CnncError] = (),
    ):
        super().__init__(message)
        self.message = message
        self.span = span
        self.path = path
        self.file = file if file is not None else (span.file if span else None)
        self.hint = hint
        self.errors = tuple(errors)

    # Errors carry location; re-raising with more context keeps the innermost one.
    def with_context(self, *, span: Span | None = None, path: str | None = None,
                     file: str | None = None) -> CnncError:
        if self.span is None and span is not None:
            self.span = span
            if self.file is None:
                self.file = span.file
        if self.path is None and path is not None:
            self.path = path
        if self.file is None and file is not None:
            self.file = file
        return self

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def headline(self) -> str:
        text = self.message
        if self.hint:
            text = f"{text}; {self.hint}"
        if self.span is not None:
            # YAML errors have both: the line and column, then the key path that names the value.
            if self.path:
                return f"{self.span.location()}: {self.path}: {text}"
            return f"{self.span.location()}: {text}"
        if self.path:
            prefix = f"{self.file}: " if self.file else ""
            return f"{prefix}{self.path}: {text}"
        if self.file:
            return f"{self.file}: {text}"
        return text

    def render(self) -> str:
        """The message as printed by the CLI: location, text, source line and caret."""
        parts = [self._render_one()]
        parts.extend(e._render_one() for e in self.errors)
        return "\n".join(parts)

    def _render_one(self) -> str:
        out = [self.headline()]
        if self.span is not None:
            line = self.span.source_line()
            if line is not None:
                line, caret = _window(line, max(self.span.column, 1) - 1)
                out.append(f"    {line}")
                out.append("    " + " " * caret + "^")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


SHOWN_COLUMNS = 100  # of a long source line, the part around the error's column


def _window(line: str, caret: int) -> tuple[str, int]:
    """The part of a long line around `caret` (marked with '...'), and the caret's place in it."""
    if len(line) <= SHOWN_COLUMNS:
        return line, caret
    start = min(max(caret - SHOWN_COLUMNS // 2, 0), len(line) - SHOWN_COLUMNS)
    part = line[start:start + SHOWN_COLUMNS]
    head = "..." if start > 0 else ""
    tail = "..." if start + SHOWN_COLUMNS < len(line) else ""
    return head + part + tail, caret - start + len(head)


class SpecError(CnncError):
    """A spec that does not parse or does not validate (syntax, unknown names, bad values)."""


class ShapeError(CnncError):
    """Shapes that do not fit: a kernel larger than its input, mismatched add inputs, ..."""


class WeightsError(CnncError):
    """Weights that do not belong to the network: missing, extra, misshaped, corrupt file."""


class InputError(CnncError):
    """Data handed to a compiled model that it cannot take: shape, dtype, NaN, empty batch."""


class DataError(CnncError):
    """Datasets that cannot be found or read: missing folders, corrupt or truncated IDX files."""


class DeviceError(CnncError):
    """OpenCL devices: none found, a kernel that fails to build, out of device memory."""


class OutputError(CnncError):
    """Files and folders cnnc cannot write: a read-only or full disk, a file where a folder
    should be. Writes are atomic, so what was there before is left as it was."""


class TrainingDiverged(CnncError):
    """The training loss became NaN or infinite: the weights no longer hold finite values."""


class InternalError(CnncError):
    """A bug in cnnc, not the user's input: two of its parts disagree (an op with no kernel
    binding, a launch argument the runtime does not know). The message asks for a report."""

    def __init__(self, message: str, **kwargs):
        kwargs.setdefault("hint", "this is a bug in cnnc, not in your input: please report it")
        super().__init__(message, **kwargs)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest valid name, or None when nothing is close."""
    import difflib  # here, not at the top: `cnnc` starts faster (Ctrl-C then finds main())

    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if not matches and name:
        lowered = {c.lower(): c for c in candidates}
        if name.lower() in lowered:
            matches = [lowered[name.lower()]]
    return f"did you mean '{matches[0]}'?" if matches else None
