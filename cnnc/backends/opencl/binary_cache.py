"""cnnc's own on-disk cache of built OpenCL programs: one file per program, written atomically.

This replaces pyopencl's binary cache, which takes one lock file for every read and write of
the whole cache: a process killed while holding it left every later run on that cache waiting
60 s and then failing, and its records are read with pickle. Here there is no lock. An entry is
one file named by the SHA-256 of everything its binary depends on (the kernel source, the
headers it includes, the build options, the device and its driver), written with
cnnc.atomic.atomic_write: processes building the same program at once write the same bytes
under the same name, and a reader sees a whole file or none. An entry starts with a format line
and the binary's length and SHA-256; one that does not check out is rebuilt, and so is one its
driver rejects. A cache that cannot be written (read-only, full) costs build time, not a failure.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnnc.atomic import atomic_write, remove_stale_temporaries
from cnnc.errors import CnncError

FORMAT = b"cnnc-opencl-program 1\n"
MAX_ENTRY_BYTES = 256 * 2**20  # a built program is KBs to a few MBs; anything larger is not ours


def device_identity(cl_device: Any) -> str:
    """What a binary is valid for: the device, its driver and its platform, by name/version."""
    parts = [cl_device.name, cl_device.vendor, cl_device.version, cl_device.driver_version,
             cl_device.platform.name, cl_device.platform.version]
    return "\n".join(str(p).strip() for p in parts)


_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.MULTILINE)


def included_headers(source: str, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers `source` includes, directly or through other headers: those of `headers`
    named by an `#include "name"` line anywhere in the texts (one under an #if counts too, which
    can only add to a key). An edit to a header then rebuilds only the programs that read it."""
    found: dict[str, str] = {}
    todo = [source]
    while todo:
        for name in _INCLUDE.findall(todo.pop()):
            if name in headers and name not in found:
                found[name] = headers[name]
                todo.append(headers[name])
    return found


def cache_key(source: str, headers: Mapping[str, str], options: str, identity: str) -> str:
    """The SHA-256 naming an entry: every input of the build (the source, the headers it
    includes, the options, the device), each length-prefixed."""
    digest = hashlib.sha256(FORMAT)
    fields = [source, options, identity]
    used = included_headers(source, headers)
    for name in sorted(used):
        fields += [name, used[name]]
    for text in fields:
        data = text.encode()
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def entry_bytes(binary: bytes) -> bytes:
    return FORMAT + len(binary).to_bytes(8, "little") + hashlib.sha256(binary).digest() + binary


def read_entry(path: Path) -> bytes | None:
    """The binary in an entry, or None if there is none or it does not check out."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_ENTRY_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    head = len(FORMAT)
    if not data.startswith(FORMAT) or len(data) < head + 40:
        return None
    size = int.from_bytes(data[head:head + 8], "little")
    checksum, binary = data[head + 8:head + 40], data[head + 40:]
    if len(binary) != size or hashlib.sha256(binary).digest() != checksum:
        return None
    return binary


_CLEANED: set[Path] = set()  # cache folders this process has swept of dead writers' files


def write_entry(path: Path, binary: bytes) -> bool:
    """Store a binary; False (and nothing else happens) if the cache cannot be written. The
    first write of a process into a folder removes what writers killed mid-write left there."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent not in _CLEANED:
            _CLEANED.add(path.parent)
            remove_stale_temporaries(path.parent)
        atomic_write(path, entry_bytes(binary))
    except (OSError, CnncError):
        return False
    return True


def entry_path(cl_device: Any, source: str, options: str, headers: Mapping[str, str],
               folder: Path) -> Path:
    """Where the cache in `folder` keeps the program built from these inputs. `options` are the
    build options without the include folder: the headers' texts are in the key instead, so two
    checkouts (or installs) of the same cnnc at different paths share their entries."""
    return folder / f"{cache_key(source, headers, options, device_identity(cl_device))}.bin"


def store_program(program: Any, path: Path) -> bool:
    """Write a built program's binary to the cache entry `path`; False if it was not written.

    Asking pocl for a binary generates the code of every kernel in the program (about a tenth
    of a second each on a 2-core Zen 1), so a caller that builds programs it will not use again
    (the tuner's losing variants) builds them with `store=False` and stores only the keepers.
    """
    import pyopencl as cl

    built = program.get_info(cl.program_info.BINARIES)
    return bool(built and built[0]) and write_entry(path, bytes(built[0]))


def include_option(folder: str) -> str:
    """The compiler option that adds `folder` to the include path (quoted where it has a
    space)."""
    return f'-I "{folder}"' if " " in folder else f"-I {folder}"


def load_entry(context: Any, cl_device: Any, path: Path, options: bytes) -> Any:
    """The program of the cache entry `path`, built from its binary; None where there is no
    valid entry or the driver rejects the binary (it changed under the same name): the caller
    builds from source."""
    import pyopencl as cl
    from pyopencl import _cl as raw

    binary = read_entry(path)
    if binary is None:
        return None
    try:
        program = raw._Program(context, [cl_device], [binary])
        program.build(options, [cl_device])
    except cl.Error:
        return None
    return program


def build_cached(context: Any, cl_device: Any, source: str, options: str,
                 headers: Mapping[str, str], folder: Path, *,
                 store: bool = True, disk: bool = True,
                 include: str | None = None) -> tuple[Any, bool]:
    """A program built for one device, from the cache in `folder` when it holds it; a program
    built from source is written to the cache unless `store` is False (store_program later).
    disk=False: built from source, the cache neither read nor written (a driver whose binaries
    crashed or did not reload when it was qualified). `include`: the folder of `headers`, given
    to the compiler as -I but kept out of the key (entry_path).

    Returns (pyopencl's raw program, whether it came from the disk). Build errors from source
    are pyopencl's (the caller reports them with the log).
    """
    from pyopencl import _cl as raw

    path = entry_path(cl_device, source, options, headers, folder)
    if include is not None:
        options = f"{options} {include_option(include)}".strip()
    options_bytes = options.encode()
    program = load_entry(context, cl_device, path, options_bytes) if disk else None
    if program is not None:
        return program, True
    program = raw._Program(context, source)
    program.build(options_bytes, [cl_device])
    if store and disk:
        store_program(program, path)
    return program, False


def header_texts(folder: Path) -> dict[str, str]:
    """The .h files a kernel may include from `folder`, by name (part of every key)."""
    texts = {}
    for path in sorted(folder.glob("*.h")):
        try:
            texts[path.name] = path.read_text()
        except OSError:
            texts[path.name] = ""
    return texts


def entries(folder: str | os.PathLike) -> list[Path]:
    """The cache's entries (for reports such as the size of the cache)."""
    try:
        return sorted(Path(folder).glob("*.bin"))
    except OSError:
        return []


__all__ = ["FORMAT", "build_cached", "cache_key", "device_identity", "entries", "entry_path",
           "header_texts", "read_entry", "store_program", "write_entry"]
