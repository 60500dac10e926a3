"""CIFAR-10 and CIFAR-100 read from their published archives: binary or python, folder or .tar.gz.

The four published forms, as unpacked (each in its own top folder, which may be given or not):
  cifar-10-batches-bin   data_batch_1.bin .. data_batch_5.bin, test_batch.bin, batches.meta.txt
                         records of 1 label byte + 3072 pixel bytes
  cifar-10-batches-py    data_batch_1 .. data_batch_5, test_batch, batches.meta (pickles)
  cifar-100-binary       train.bin, test.bin, fine_label_names.txt (2 label bytes: coarse, fine)
  cifar-100-python       train, test, meta (pickles)
Pixels are 1024 red, 1024 green, 1024 blue bytes, each plane row-major 32x32; they become
(N, 32, 32, 3) uint8. CIFAR-100 trains on its 100 fine labels. Pickles are read with
cnnc.data.safe_pickle (never pickle.load); a .tar.gz is read member by member in memory (never
extracted, so no member name can write anywhere).
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnc.data.safe_pickle import load_data_pickle
from cnnc.errors import DataError
from cnnc.files import read_capped
from cnnc.input_limits import MAX_IDX_BYTES, size_text

SIDE = 32
PIXELS = 3 * SIDE * SIDE
TOP_FOLDERS = ("cifar-10-batches-bin", "cifar-10-batches-py", "cifar-100-binary",
               "cifar-100-python")
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


@dataclass(frozen=True)
class Layout:
    name: str  # cifar10 | cifar100
    title: str
    binary: bool
    train: tuple[str, ...]
    test: str
    meta: str
    classes: int


LAYOUTS = (
    Layout("cifar10", "CIFAR-10 (binary)", True, tuple(f"{b}.bin" for b in TRAIN_BATCHES),
           "test_batch.bin", "batches.meta.txt", 10),
    Layout("cifar10", "CIFAR-10 (python)", False, TRAIN_BATCHES, "test_batch", "batches.meta", 10),
    Layout("cifar100", "CIFAR-100 (binary)", True, ("train.bin",), "test.bin",
           "fine_label_names.txt", 100),
    Layout("cifar100", "CIFAR-100 (python)", False, ("train",), "test", "meta", 100),
)


@dataclass(frozen=True)
class CifarData:
    layout: Layout
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    class_names: tuple[str, ...]


Reader = Callable[[str], bytes]  # a member's bytes by its file name


def is_cifar_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith((".tar.gz", ".tgz", ".tar"))


def _layout_of(names: set[str]) -> Layout | None:
    for layout in LAYOUTS:
        if layout.test in names and all(t in names for t in layout.train[:1]):
            return layout
    return None


def folder_layout(folder: Path) -> tuple[Layout, Path] | None:
    """The CIFAR layout in `folder` or one of its published top folders, if any."""
    for place in (folder, *(folder / t for t in TOP_FOLDERS)):
        if place.is_dir():
            layout = _layout_of({p.name for p in place.iterdir() if p.is_file()})
            if layout:
                return layout, place
    return None


def load_cifar(path: Path) -> CifarData:
    """CIFAR-10 or CIFAR-100 from a folder or a .tar.gz archive; DataError naming the file for
    anything missing, truncated or out of range."""
    if path.is_dir():
        found = folder_layout(path)
        if found is None:
            raise DataError(f"{path}: no CIFAR files", hint=_expected())
        layout, place = found

        def read(name: str) -> bytes:
            return read_capped(place / name, MAX_IDX_BYTES, DataError, "CIFAR file")

        return _load(layout, read, lambda n: (place / n).is_file(), str(place))
    return _load_tar(path)


def _expected() -> str:
    return ("expected one of CIFAR's published layouts: " + "; ".join(
        f"{lay.title}: {', '.join(lay.train[:1])}{'..' if len(lay.train) > 1 else ''}, "
        f"{lay.test}" for lay in LAYOUTS))


def _load_tar(path: Path) -> CifarData:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {}
            for m in tar.getmembers():
                parts = m.name.split("/")
                # Only regular files at the top or in one folder: links and devices never count.
                if m.isfile() and len(parts) <= 2:
                    members.setdefault(parts[-1], m)
            layout = _layout_of(set(members))
            if layout is None:
                raise DataError(f"{path}: the archive holds no CIFAR files", hint=_expected())

            def read(name: str) -> bytes:
                member = members[name]
                if member.size > MAX_IDX_BYTES:
                    raise DataError(f"{path}[{member.name}]: {size_text(member.size)}, more "
                                    f"than the {size_text(MAX_IDX_BYTES)} cnnc reads")
                f = tar.extractfile(member)
                if f is None:
                    raise DataError(f"{path}[{member.name}]: not a readable file")
                return f.read()

            return _load(layout, read, lambda n: n in members, str(path))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"{path}: not a readable tar archive ({err})") from None


def _load(layout: Layout, read: Reader, has: Callable[[str], bool], where: str) -> CifarData:
    missing = [n for n in (*layout.train, layout.test) if not has(n)]
    if missing:
        raise DataError(f"{where}: {layout.title} is missing {', '.join(missing)}")
    parts = []
    for names in (layout.train, (layout.test,)):
        batches = [_batch(layout, read(n), f"{where}/{n}") for n in names]
        parts.append((np.concatenate([b[0] for b in batches]),
                      np.concatenate([b[1] for b in batches])))
    names = _class_names(layout, read, has, where)
    return CifarData(layout, parts[0], parts[1], names)


def _batch(layout: Layout, data: bytes, label: str) -> tuple[np.ndarray, np.ndarray]:
    if layout.binary:
        label_bytes = 1 if layout.classes == 10 else 2
        record = label_bytes + PIXELS
        if len(data) == 0 or len(data) % record:
            raise DataError(f"{label}: {len(data)} bytes is not a whole number of "
                            f"{record}-byte records", hint="the file is truncated or not CIFAR")
        rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
        labels = rows[:, label_bytes - 1].astype(np.int32)  # CIFAR-100: the fine label
        pixels = rows[:, label_bytes:]
    else:
        batch = load_data_pickle(data, label)
        key = b"labels" if layout.classes == 10 else b"fine_labels"
        if not isinstance(batch, dict) or b"data" not in batch or key not in batch:
            raise DataError(f"{label}: not a CIFAR batch (a dict with b'data' and {key!r})")
        pixels, raw = batch[b"data"], batch[key]
        if (not isinstance(pixels, np.ndarray) or pixels.ndim != 2
                or pixels.shape[1] != PIXELS):
            raise DataError(f"{label}: b'data' is not an N x {PIXELS} uint8 array")
        if not isinstance(raw, list) or not all(type(v) is int for v in raw):
            raise DataError(f"{label}: {key!r} is not a list of class indices")
        if len(raw) != pixels.shape[0]:
            raise DataError(f"{label}: {pixels.shape[0]} images but {len(raw)} labels")
        if any(v < 0 or v >= layout.classes for v in raw):
            bad = next(i for i, v in enumerate(raw) if v < 0 or v >= layout.classes)
            raise DataError(f"{label}: label {raw[bad]} at index {bad} is outside "
                            f"0..{layout.classes - 1}")
        labels = np.asarray(raw, dtype=np.int32)
    bad = np.flatnonzero(labels >= layout.classes)
    if bad.size:
        raise DataError(f"{label}: label {int(labels[bad[0]])} at record {int(bad[0])} is "
                        f"outside 0..{layout.classes - 1} ({bad.size} such labels)")
    images = pixels.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _class_names(layout: Layout, read: Reader, has: Callable[[str], bool], where: str
                 ) -> tuple[str, ...]:
    fallback = CIFAR10_NAMES if layout.classes == 10 else tuple(map(str, range(100)))
    if not has(layout.meta):
        return fallback
    raw = read(layout.meta)
    label = f"{where}/{layout.meta}"
    if layout.binary:
        names = [line.strip() for line in raw.decode("utf-8", "replace").splitlines()]
        names = [n for n in names if n]
    else:
        meta = load_data_pickle(raw, label)
        key = b"label_names" if layout.classes == 10 else b"fine_label_names"
        names = meta.get(key) if isinstance(meta, dict) else None
        if not isinstance(names, list):
            raise DataError(f"{label}: no {key!r} list of class names")
        names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
                 for n in names]
    if len(names) != layout.classes:
        raise DataError(f"{label}: {len(names)} class names, {layout.title} has "
                        f"{layout.classes} classes")
    return tuple(names)
