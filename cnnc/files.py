"""Reading the files a user names (specs, datasets, arrays, weights) without trusting them.

Only regular files are read: a FIFO would block forever and a device such as /dev/zero never
ends. Reads are capped: a file larger than its kind allows is refused from its size, before
anything is read, and a file that grows while read is cut at the cap and refused too. Messages
start with the file's name, as the errors of the readers that use these do.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cnnc.errors import CnncError
from cnnc.input_limits import size_text


def check_regular(path: str | os.PathLike, error: type[CnncError] = CnncError,
                  what: str = "file") -> os.stat_result:
    """The file's stat, after checking that it exists and is a regular file (or a link to one)."""
    label = os.fspath(path)
    try:
        info = os.stat(label)
    except FileNotFoundError:
        raise error(f"{label}: no such file") from None
    except (OSError, ValueError) as err:  # ENAMETOOLONG, ELOOP, EACCES, an embedded NUL ...
        reason = getattr(err, "strerror", None) or str(err)
        raise error(f"{label}: cannot open the {what} ({reason})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{label}: it is a directory, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(info.st_mode) else
                "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "a special file")
        raise error(f"{label}: it is {kind}, not a {what}: cnnc reads only regular files")
    return info


def read_capped(path: str | os.PathLike, max_bytes: int, error: type[CnncError] = CnncError,
                what: str = "file") -> bytes:
    """The bytes of a regular file of at most `max_bytes`; `error` (a CnncError) otherwise."""
    label = os.fspath(path)
    info = check_regular(label, error, what)
    if info.st_size > max_bytes:
        raise error(f"{label}: the {what} is {size_text(info.st_size)}, more than the "
                    f"{size_text(max_bytes)} cnnc reads")
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, open does not block.
        fd = os.open(label, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as err:
        raise error(f"{label}: cannot read the {what} ({err.strerror or err})") from None
    if len(data) > max_bytes:
        raise error(f"{label}: the {what} is more than the {size_text(max_bytes)} cnnc reads")
    return data


def open_regular(path: str | os.PathLike, error: type[CnncError] = CnncError,
                 what: str = "file"):
    """A binary file object for a regular file, for streaming reads (the caller closes it)."""
    label = os.fspath(path)
    check_regular(label, error, what)
    try:
        return Path(label).open("rb")
    except OSError as err:
        raise error(f"{label}: cannot read the {what} ({err.strerror or err})") from None


__all__ = ["check_regular", "open_regular", "read_capped"]
