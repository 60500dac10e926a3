"""Fetching a dataset's four files from its official addresses, each checked against its MD5.

Each file is streamed into a temporary file beside its final name and renamed only once its
checksum matches, so an interrupted or corrupted download never leaves a file that looks whole.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cnnc.data.catalog import DataFile, DatasetInfo

TIMEOUT_S = 30
_CHUNK = 1 << 16


class DownloadFailed(Exception):
    """Every mirror failed for a file; the message says why for each (internal to cnnc.data)."""


def _fetch(url: str, dest: Path, md5: str) -> None:
    """Stream `url` into `dest` if its MD5 matches; raise DownloadFailed otherwise."""
    digest = hashlib.md5(usedforsecurity=False)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5:
            raise DownloadFailed(f"{url}: checksum mismatch (MD5 {digest.hexdigest()}, "
                                 f"published {md5})")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise DownloadFailed(f"{url}: {reason}") from None
    finally:
        tmp.unlink(missing_ok=True)


def download_file(info: DatasetInfo, file: DataFile, folder: Path,
                  log: Callable[[str], None]) -> Path:
    """Download one .gz file into `folder`, trying each mirror in turn."""
    dest = folder / file.gz_name
    failures = []
    for base in info.mirrors:
        url = base + file.gz_name
        log(f"downloading {url}")
        try:
            _fetch(url, dest, file.md5)
            return dest
        except DownloadFailed as err:
            failures.append(str(err))
    raise DownloadFailed("; ".join(failures))


def download_dataset(info: DatasetInfo, folder: Path, log: Callable[[str], None]) -> None:
    """Download every file of `info` missing from `folder` (created if needed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadFailed(f"cannot create {folder}: {err.strerror or err}") from None
    for file in info.files:
        if not (folder / file.gz_name).exists():
            download_file(info, file, folder, log)
