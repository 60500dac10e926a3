"""Small datasets in the user-file formats cnnc reads (image folders, .npz, CIFAR archives), for
tests: written from scratch in each format's published layout, nothing downloaded."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

# Colours an image folder's classes are painted in: a flat image keeps its colour through any
# resize, so a decoded pixel tells which class (and channel conversion) it went through.
COLOURS = {"cat": (255, 0, 0), "dog": (0, 255, 0), "eel": (0, 0, 255)}


def luma(rgb: tuple[int, int, int]) -> int:
    """Pillow's RGB to L (ITU-R 601 weights 0.299, 0.587, 0.114 in 16-bit fixed point, as
    libImaging/Convert.c computes it)."""
    r, g, b = rgb
    return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16


def write_image_folder(root: Path, per_class: int = 5, classes=tuple(COLOURS),
                       sizes=((9, 7), (13, 10), (8, 8)), formats=("png", "jpeg", "bmp", "webp"),
                       gray_every: int = 3) -> Path:
    """One subfolder per class of flat-coloured images of odd sizes in several formats, every
    `gray_every`-th one saved in grayscale (mode L, the colour's luma)."""
    from PIL import Image

    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        colour = COLOURS[name]
        for i in range(per_class):
            w, h = sizes[i % len(sizes)]
            fmt = formats[i % len(formats)]
            if i % gray_every == gray_every - 1:
                image = Image.new("L", (w, h), luma(colour))
            else:
                image = Image.new("RGB", (w, h), colour)
            # Lossless so that a flat colour stays exact (JPEG's flat blocks do too).
            options = {"lossless": True} if fmt == "webp" else {}
            options.update({"quality": 100} if fmt == "jpeg" else {})
            image.save(folder / f"{i:03d}.{'jpg' if fmt == 'jpeg' else fmt}", fmt.upper(),
                       **options)
    return root


def random_images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def cifar_rows(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) uint8 as CIFAR's rows of 1024 red, 1024 green, 1024 blue bytes."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _binary_batch(images: np.ndarray, labels: np.ndarray, hundred: bool) -> bytes:
    rows = cifar_rows(images)
    heads = (np.stack([labels // 5, labels], axis=1) if hundred else labels[:, None])
    return np.concatenate([heads.astype(np.uint8), rows], axis=1).tobytes()


def _python_batch(images: np.ndarray, labels: np.ndarray, hundred: bool, protocol: int
                  ) -> bytes:
    key = b"fine_labels" if hundred else b"labels"
    batch = {b"batch_label": b"testing batch", key: [int(v) for v in labels],
             b"data": cifar_rows(images), b"filenames": [b"x.png"] * len(labels)}
    if hundred:
        batch[b"coarse_labels"] = [int(v) // 5 for v in labels]
    return pickle.dumps(batch, protocol=protocol)


def write_cifar(path: Path, *, hundred: bool = False, binary: bool = True, archive: bool = True,
                per_batch: int = 3, protocol: int = 2, seed: int = 0
                ) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A CIFAR-10 or -100 dataset in its published layout, as a .tar.gz (archive) or unpacked
    under `path`; returns the path to give cnnc and {'train': (x, y), 'test': (x, y)}."""
    classes = 100 if hundred else 10
    top = ("cifar-100-" if hundred else "cifar-10-batches-") + ("binary" if binary and hundred
                                                                else "bin" if binary else
                                                                "python" if hundred else "py")
    rng = np.random.default_rng(seed)
    batches = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    files: dict[str, bytes] = {}
    parts: dict[str, list] = {"train": [], "test": []}
    for name in [*batches, "test" if hundred else "test_batch"]:
        x = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, classes, per_batch).astype(np.int32)
        parts["test" if name.startswith("test") else "train"].append((x, y))
        files[name + (".bin" if binary else "")] = (
            _binary_batch(x, y, hundred) if binary else _python_batch(x, y, hundred, protocol))
    names = [f"class{i}" for i in range(classes)]
    if binary:
        files["fine_label_names.txt" if hundred else "batches.meta.txt"] = \
            ("\n".join(names) + "\n\n").encode()
    else:
        key = b"fine_label_names" if hundred else b"label_names"
        files["meta" if hundred else "batches.meta"] = pickle.dumps(
            {key: names, b"num_cases_per_batch": per_batch}, protocol=protocol)
    if archive:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        given = path
    else:
        (path / top).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (path / top / name).write_bytes(data)
        given = path
    out = {k: (np.concatenate([p[0] for p in v]), np.concatenate([p[1] for p in v]))
           for k, v in parts.items()}
    return given, out


def png_with_header_size(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares width x height (CRC correct) with no image data to match:
    what a hostile file looks like to a reader that trusts the header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path
