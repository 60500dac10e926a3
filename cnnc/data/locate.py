"""Finding a dataset's files: --data, $CNNC_DATA, the user cache, the Debian package, a download.

The first folder that holds all four files wins. A folder named with --data must hold them (an
explicit choice never falls through to another folder). When nothing is found and downloading
is allowed, the files are fetched into the user cache; otherwise the error names every folder
tried and the two ways to get the data.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cnnc import settings
from cnnc.data.catalog import DataFile, DatasetInfo
from cnnc.data.download import DownloadFailed, download_dataset
from cnnc.errors import DataError


@dataclass(frozen=True)
class FoundFiles:
    folder: Path
    origin: str  # which rule found it: '--data', '$CNNC_DATA', 'user cache', ...
    paths: dict[str, Path]  # role -> file
    downloaded: bool = False


def _log_stderr(message: str) -> None:
    print(f"cnnc: {message}", file=sys.stderr)


def _spellings(file: DataFile) -> tuple[str, ...]:
    # Some unpackers write 'train-images.idx3-ubyte' (a dot before idx); accept both forms.
    dotted = file.name.replace("-idx", ".idx")
    return (file.gz_name, file.name, dotted + ".gz", dotted)


def files_in(folder: Path, info: DatasetInfo) -> tuple[dict[str, Path], list[str]]:
    """The dataset's files present in `folder` by role, and the names of those missing."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for file in info.files:
        for name in _spellings(file):
            if (folder / name).is_file():
                found[file.role] = folder / name
                break
        else:
            missing.append(file.gz_name)
    return found, missing


def _with_subfolders(folder: Path, info: DatasetInfo) -> list[Path]:
    """A data folder may hold the files itself or in a subfolder named for the dataset."""
    return [folder, folder / info.name, folder / info.name.replace("_", "-")]


@dataclass
class _Search:
    info: DatasetInfo
    tried: list[str]

    def look(self, folder: Path, origin: str) -> FoundFiles | None:
        found, missing = files_in(folder, self.info)
        if not missing:
            return FoundFiles(folder, origin, found)
        if found:
            self.tried.append(f"{folder} ({origin}): has only {len(found)} of the 4 files, "
                              f"missing {', '.join(missing)}")
        elif folder.is_dir():
            self.tried.append(f"{folder} ({origin}): none of the files")
        else:
            self.tried.append(f"{folder} ({origin}): no such folder")
        return None

    def first(self, folders: Iterable[Path], origin: str) -> FoundFiles | None:
        """The first of `folders` that holds every file; each one tried is recorded."""
        for folder in folders:
            hit = self.look(folder, origin)
            if hit:
                return hit
        return None


def locate_dataset(
    info: DatasetInfo,
    data_dir: str | Path | None = None,
    *,
    download: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> FoundFiles:
    """The folder holding `info`'s four IDX files, downloading them into the cache if needed.

    download: None means "unless $CNNC_OFFLINE is set"; log receives progress messages.
    """
    log = log or _log_stderr
    search = _Search(info, [])
    if data_dir is not None:
        hit = search.first(_with_subfolders(Path(data_dir).expanduser(), info), "--data")
        if hit:
            return hit
        raise DataError(
            f"{info.title} files not found in the folder given with --data ({data_dir})",
            hint="expected " + ", ".join(f.gz_name for f in info.files)
            + " (gzipped or not), in that folder or in a subfolder named "
            + info.name + "; looked at:\n  " + "\n  ".join(search.tried))
    env = settings.data_dir()
    if env is None:
        search.tried.append("$CNNC_DATA: not set")
    cache = settings.cache_dir() / info.name
    places = [  # the search order of the module doc, after --data
        (_with_subfolders(env, info) if env is not None else [], "$CNNC_DATA"),
        ([cache], "user cache"),
        ([Path(f) for f in info.system_dirs], f"Debian package {info.system_package}"),
    ]
    for folders, origin in places:
        hit = search.first(folders, origin)
        if hit:
            return hit

    if download is None:
        download = not settings.offline()
    reason = "downloading is off ($CNNC_OFFLINE is set)"
    if download:
        log(f"{info.title} not found locally; downloading it into {cache}")
        try:
            download_dataset(info, cache, log)
        except DownloadFailed as err:
            reason = f"downloading failed: {err}"
        else:
            found, missing = files_in(cache, info)
            if not missing:
                log(f"{info.title} downloaded into {cache} (checksums verified)")
                return FoundFiles(cache, "download", found, downloaded=True)
            reason = f"after downloading, {', '.join(missing)} are still missing"
    raise DataError(_not_found_message(info, search.tried, reason))


def _not_found_message(info: DatasetInfo, tried: list[str], reason: str) -> str:
    names = ", ".join(f.gz_name for f in info.files)
    lines = [f"{info.title} files not found. Looked in:"]
    lines += [f"  {t}" for t in tried]
    lines.append(f"and {reason}.")
    lines.append("Get the data in one of two ways:")
    if info.system_package:
        where = f"  (it puts the files in {info.system_dirs[0]})" if info.system_dirs else ""
        lines.append(f"  1. install Debian's package (as root): apt-get install "
                     f"{info.system_package}{where}")
    else:
        lines.append("  1. download them (Debian has no package for this dataset) from "
                     + " or ".join(info.mirrors) + " with network access, e.g. by running "
                     "cnnc once where the network is reachable")
    lines.append(f"  2. copy the four files ({names}; gzipped or not) into a folder and pass "
                 "--data FOLDER, or set CNNC_DATA=FOLDER")
    return "\n".join(lines)
