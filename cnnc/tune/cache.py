"""The tuning cache: the winning kernel variant of each tuned launch, one JSON file per user.

`<cache dir>/tuning.json` (CNNC_CACHE_DIR, settings.py) maps an entry id, the SHA-256 of the
entry's key, to the entry. The key names everything a choice depends on: the device's name,
driver and platform versions, a hash of the kernel sources (kernels/*.cl and *.h), the op and
its shapes and attributes, the batch size and the dtype. Each entry carries a checksum of its
content. On reading, the file and every entry are validated (format, known fields, the id
matching the key, variant keys and integer ranges, positive times, the checksum): a corrupt
file or a tampered or malformed entry is discarded with a warning, never used. An entry for
another device or another version of the kernels is simply never looked up; one written for other
kernel sources is kept as it is when this process rewrites the file, even where its variant names
something this version does not know (it was written by a newer or older cnnc): two checkouts or
versions sharing a cache dir would otherwise erase each other's tunings at every write.

Writers take an exclusive lock on `tuning.json.lock` (fcntl.flock; the lock is released by the
kernel when a process dies, so a crash never leaves it held), re-read the file, merge their
entries and replace the file atomically (cnnc/atomic.py): two processes tuning at once both
keep their entries, and a reader without the lock sees the old file or the new one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from cnnc import settings
from cnnc.atomic import atomic_write
from cnnc.errors import CnncError
from cnnc.tune.space import ALGOS, INT_KEYS, TILE_VARIANT_KEYS

FORMAT = "cnnc-tuning 1"
FILE_NAME = "tuning.json"
KEY_FIELDS = ("device", "driver", "platform", "kernels", "op", "shapes", "attrs", "batch", "dtype")
ENTRY_FIELDS = ("key", "variant", "seconds", "default_seconds", "checksum")
# "cut": the winner of a search its budget cut short with variants left to time, and the
# indices (in the launch's variant space) of those it timed: used like any entry, and resumed
# from there (not trusted as final) by the next `cnnc tune` of its graph.
OPTIONAL_FIELDS = ("cut",)
MAX_FILE_BYTES = 64 * 2**20


class TuningCacheError(CnncError):
    """A tuning file that cannot be read or written (import, export)."""


def warn(message: str) -> None:
    print(f"cnnc: warning: {message}", file=sys.stderr)


# ---------------------------------------------------------------- keys


@cache
def kernel_source_hash() -> str:
    """SHA-256 of every kernel source and header: a tuning is for one version of the kernels."""
    from cnnc.backends.opencl.program import kernel_dir

    digest = hashlib.sha256()
    folder = kernel_dir()
    for path in sorted([*folder.glob("*.cl"), *folder.glob("*.h")]):
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def device_fields(device: Any) -> dict[str, str]:
    """The key's device part (cnnc.backends.opencl.device.Device)."""
    d = device.cl_device
    return {
        "device": str(d.name).strip(),
        "driver": str(d.driver_version).strip(),
        "platform": str(d.platform.version).strip(),
    }


def _plain(value: Any) -> Any:
    """Attributes as JSON: tuples as lists, mappings with sorted keys."""
    if isinstance(value, Mapping):
        return {str(k): _plain(value[k]) for k in sorted(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def make_key(device: Mapping[str, str], op: str, shapes: list, attrs: Mapping[str, Any],
             batch: int, dtype: str = "float32") -> dict[str, Any]:
    return {
        **device,
        "kernels": kernel_source_hash(),
        "op": op,
        "shapes": _plain(shapes),
        "attrs": _plain(attrs),
        "batch": batch,
        "dtype": dtype,
    }


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def entry_id(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(b"key\0" + _canonical(key)).hexdigest()


def same_but_batch(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two keys name the same launch at (possibly) different batch sizes: equal but
    for the batch, and shapes equal or differing only in a leading dimension that is each
    key's batch size."""
    rest = ("batch", "shapes")
    if {k: v for k, v in a.items() if k not in rest} != {k: v for k, v in b.items()
                                                          if k not in rest}:
        return False
    if len(a["shapes"]) != len(b["shapes"]):
        return False
    for sa, sb in zip(a["shapes"], b["shapes"]):
        if sa != sb and not (len(sa) == len(sb) > 0 and sa[1:] == sb[1:]
                             and sa[0] == a["batch"] and sb[0] == b["batch"]):
            return False
    return True


def checksum(entry: Mapping[str, Any]) -> str:
    body = {k: entry[k] for k in (*ENTRY_FIELDS, *OPTIONAL_FIELDS) if k != "checksum" and k in entry}
    return hashlib.sha256(b"entry\0" + _canonical(body)).hexdigest()


def graph_digest(graph: Any) -> str:
    """What a graph computes, weights aside: its nodes in order (name, op, inputs,
    attributes) and the shapes of their outputs (the key of a whole pass's entries:
    chunking.py, device_choice.py)."""
    nodes = [[n.name, n.op, list(n.inputs), _plain(dict(n.attrs)),
              _plain(graph.shape_of(n.name))] for n in graph.nodes]
    return hashlib.sha256(b"graph\0" + _canonical(nodes)).hexdigest()


DEVICE_OP = "forward_device"  # the entry of which device runs a small pass (device_choice.py)


def pass_key(device: Any, op: str, graph: Any, batch: int) -> dict[str, Any]:
    """The key of an entry about a whole forward pass of `graph` at `batch` (`op`: what it
    holds, chunking.py's chunk size or device_choice.py's device), not about one launch."""
    shapes = [list(graph.concrete_shape(name, batch)) for name in graph.inputs]
    return make_key(device_fields(device), op, shapes, {"graph": graph_digest(graph)}, batch)


def device_key(device: Any, graph: Any, batch: int) -> dict[str, Any]:
    """The key of the timed choice of device for a forward pass of `graph` at `batch`."""
    return pass_key(device, DEVICE_OP, graph, batch)


# ---------------------------------------------------------------- validation


def variant_problem(variant: Any) -> str | None:
    """Why `variant` is not a variant the binders accept (None: it is one)."""
    if not isinstance(variant, dict):
        return "the variant is not a mapping"
    for name, value in variant.items():
        if name == "algo":
            if value not in ALGOS:
                return f"unknown algorithm {value!r}"
        elif name in INT_KEYS:
            lo, hi = INT_KEYS[name]
            if type(value) is not int or not lo <= value <= hi:
                return f"{name}={value!r} is not an integer in {lo}..{hi}"
        elif name in TILE_VARIANT_KEYS:
            if not isinstance(value, dict) or set(value) != {"MR", "VW", "NV"}:
                return f"{name}={value!r} is not a register tile (MR, VW, NV)"
            problem = variant_problem(value)
            if problem:
                return f"{name}: {problem}"
        else:
            return f"unknown variant key {name!r}"
    if "VW" in variant and variant["VW"] not in (1, 2, 4, 8, 16):
        return f"VW={variant['VW']} is not a vector width"
    return None


def _fields_ok(entry: Any) -> bool:
    return (isinstance(entry, dict) and set(ENTRY_FIELDS) <= set(entry)
            and set(entry) <= {*ENTRY_FIELDS, *OPTIONAL_FIELDS})


def _positive(value: Any) -> bool:
    return type(value) is float and math.isfinite(value) and value > 0


def entry_problem(eid: Any, entry: Any) -> str | None:
    """Why an entry is not a valid one (None: it is)."""
    if not _fields_ok(entry):
        return "its fields are not the expected ones"
    if "cut" in entry and not (isinstance(entry["cut"], list) and 0 < len(entry["cut"]) <= 1000
                               and all(type(i) is int and 0 <= i < 10000 for i in entry["cut"])):
        return "its 'cut' mark is not a list of variant indices"
    key = entry["key"]
    if not isinstance(key, dict) or sorted(key) != sorted(KEY_FIELDS):
        return "its key's fields are not the expected ones"
    if type(key["batch"]) is not int or key["batch"] <= 0:
        return "its batch is not a positive integer"
    if eid != entry_id(key):
        return "its id does not match its key"
    problem = variant_problem(entry["variant"])
    if problem:
        return problem
    if not (_positive(entry["seconds"]) and _positive(entry["default_seconds"])):
        return "its times are not positive numbers"
    if entry["checksum"] != checksum(entry):
        return "its checksum does not match its content"
    return None


def other_kernels_entry(eid: Any, entry: Any) -> bool:
    """Whether `entry` is intact (its id and checksum match) and was written for other kernel
    sources than this process's: never looked up here, whatever its variant says, but not
    this version's to discard."""
    return (_fields_ok(entry) and isinstance(entry["key"], dict) and sorted(entry["key"]) == sorted(KEY_FIELDS)
            and entry["key"]["kernels"] != kernel_source_hash()
            and eid == entry_id(entry["key"]) and entry["checksum"] == checksum(entry))


def parse(text: str | bytes, where: str, *,
          others: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The valid entries of a tuning file's text; everything else discarded with a warning.
    With `others` (a dict), the intact entries of other kernel sources that this version
    cannot validate go there, without a warning, to be written back unchanged."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        warn(f"{where} is not valid JSON ({err}); its tunings are discarded")
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(
        data.get("entries"), dict
    ):
        warn(f"{where} is not a cnnc tuning file ({FORMAT!r}); its tunings are discarded")
        return {}
    valid = {}
    for eid, entry in data["entries"].items():
        problem = entry_problem(eid, entry)
        if problem and other_kernels_entry(eid, entry):
            if others is not None:
                others[eid] = entry
            continue
        if problem:
            warn(f"{where}: entry {str(eid)[:12]} discarded: {problem}")
            continue
        valid[eid] = entry
    return valid


def dump(entries: Mapping[str, Mapping[str, Any]]) -> str:
    return json.dumps({"format": FORMAT, "entries": dict(entries)}, indent=1, sort_keys=True)


def make_entry(key: dict[str, Any], variant: dict[str, Any], seconds: float,
               default_seconds: float, *, cut: list[int] | None = None) -> dict[str, Any]:
    entry = {"key": key, "variant": dict(variant), "seconds": float(seconds),
             "default_seconds": float(default_seconds)}
    if cut:
        entry["cut"] = sorted(cut)
    entry["checksum"] = checksum({**entry, "checksum": ""})
    return entry


# ---------------------------------------------------------------- the file


@dataclass
class TuningCache:
    """The tuning file at `path` (default: <cache dir>/tuning.json), read once, merged on
    every write."""

    path: Path

    @classmethod
    def default(cls) -> TuningCache:
        return cls(settings.cache_dir() / FILE_NAME)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._entries: dict[str, dict[str, Any]] | None = None

    def _read(self, others: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as err:
            warn(f"the tuning cache {self.path} cannot be read ({err.strerror}); not used")
            return {}
        if len(data) > MAX_FILE_BYTES:
            warn(f"the tuning cache {self.path} is larger than any cnnc writes; not used")
            return {}
        return parse(data, str(self.path), others=others)

    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def get(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The entry for `key`, or None."""
        return self.entries.get(entry_id(key))

    def get_other_batch(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """An entry for the same launch at another batch size (the nearest), or None: what a
        run's short last batch or its evaluation batch can use instead of tuning anew."""
        return next(iter(self.other_batches(key)), None)

    def other_batches(self, key: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The entries for the same launch at other batch sizes, the nearest first."""
        found = [e for e in self.entries.values() if same_but_batch(e["key"], key)]
        return sorted(found, key=lambda e: abs(e["key"]["batch"] - key["batch"]))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def store(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        """Add `entries` (id -> entry) to the file, keeping what other processes wrote."""
        try:
            with self._locked():
                others: dict[str, Any] = {}
                merged = {**self._read(others), **entries}
                atomic_write(self.path, dump({**others, **merged}))
        except (OSError, CnncError) as err:
            warn(f"the tuning cache {self.path} cannot be written ({err}); the tunings of this "
                 "run are not kept")
            merged = {**self.entries, **entries}
        self._entries = dict(merged)

    def put(self, entry: Mapping[str, Any]) -> None:
        self.store({entry_id(entry["key"]): dict(entry)})


def export_entries(cache_: TuningCache, path: str | os.PathLike) -> int:
    """Write every valid entry of the cache to `path`; the number written."""
    entries = cache_.entries
    try:
        atomic_write(path, dump(entries))
    except OSError as err:
        raise TuningCacheError(f"cannot write {path}: {err.strerror}") from None
    return len(entries)


def import_entries(cache_: TuningCache, path: str | os.PathLike) -> int:
    """Merge the valid entries of the file at `path` into the cache; the number taken."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise TuningCacheError(f"cannot read {path}: {err.strerror}",
                               file=str(path)) from None
    if len(data) > MAX_FILE_BYTES:
        raise TuningCacheError(f"{path} is larger than any tuning file cnnc writes")
    entries = parse(data, str(path))
    for eid, entry in list(entries.items()):
        if entry["key"]["kernels"] != kernel_source_hash():  # never looked up: not kept
            warn(f"{path}: entry {eid[:12]} discarded: it was tuned for other kernel sources")
            del entries[eid]
    if entries:
        cache_.store(entries)
    return len(entries)
