"""Atomic file replacement, for every file cnnc writes that a crash must not leave torn.

Weights files, checkpoints and the run folder's records all go through `atomic_write`: the data
goes to a temporary file in the same folder, is flushed and fsync'd, then renamed over the old
file (os.replace is atomic on POSIX), and the folder is fsync'd. A kill at any moment leaves
either the old content or the new, never a mixture.

A process killed mid-write leaves its temporary file behind (nothing can remove it then); the
file's name holds the writer's process id, so `remove_stale_temporaries` can later tell the
leftovers of dead writers from the files of live ones. A write that fails (a full or read-only
disk, a missing folder) removes its temporary file and raises OutputError naming the file.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path

from cnnc.errors import OutputError

_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp")


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Replace `path` with `data` so that readers see the old or the new content, nothing else."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
    except OSError as err:
        raise _output_error(path, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _output_error(path, err) from None
        raise
    _fsync_dir(path.parent)
    return path


def _output_error(path: Path, err: OSError) -> OutputError:
    reason = err.strerror or str(err)
    hint = None
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "free some space (the file was left as it was before this write)"
    elif err.errno == errno.EROFS:
        hint = "the filesystem is read-only: write somewhere else"
    elif err.errno in (errno.EACCES, errno.EPERM):
        hint = "no permission to write there: write somewhere else"
    return OutputError(f"cannot write {path}: {reason}", hint=hint)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writers killed mid-write left in `folder`; the files of
    writers still running are kept. Returns what was removed."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or _alive(int(match["pid"])):
            continue
        try:
            entry.unlink()
            removed.append(entry)
        except OSError:
            pass  # a read-only folder keeps them; they hold nothing anyone reads
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not writing while it cleans up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or a number no process has: leave the file be
    return True


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, and harmless to skip.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
