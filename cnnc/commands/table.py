"""Plain-text tables for the commands' listings: columns as wide as their widest cell, so no
name is ever cut (a device's, a node's or a kernel variant's)."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def format_table(head: Sequence[str], rows: Sequence[Sequence[str]],
                 right: Collection[int] = ()) -> list[str]:
    """The table's lines: `head` and `rows`, columns `right` (indexes) aligned right."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return ["  ".join(c.rjust(w) if i in right else c.ljust(w)
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in [head, *rows]]
