"""An image folder as a dataset: one subfolder per class, decoded with Pillow to the input's shape.

Layouts (the class names are the subfolder names, sorted, as Keras' image_dataset_from_directory
has them):
  ROOT/CLASS/IMAGE                     every image; the test set is the last TEST_FRACTION of the
                                       files in a fixed shuffled order, the rest is for training
  ROOT/train/CLASS/IMAGE               training images; val/ (or validation/) and test/ beside
  [ROOT/val/CLASS/IMAGE]               it are used when present (their classes must be among
  [ROOT/test/CLASS/IMAGE]              train/'s); without test/, test is held out as above
The fixed order (the same on every run, independent of the training seed) mixes the classes, so
the last fraction (the test part here, the validation part in cnnc/data/split.py) holds every
class. Files whose names start with '.' are ignored (.DS_Store, editors' files).

Each image (PNG, JPEG, BMP, WebP, anything Pillow reads) is converted to grayscale or RGB for the
spec's input channels, then fitted to its height and width by the `image_fit` setting:
  resize (default)  stretched to the size, as Keras does by default (Pillow's bilinear)
  crop              the largest centred window of the input's aspect ratio, then resized
                    (Keras' crop_to_aspect_ratio=True): no distortion, edges lost
Images are stored as uint8 at the input size (N*H*W*C bytes), decoded on worker threads; with
`stream`, the training images go to a temporary file and are read per batch (streamed.py).
A file that cannot be used (corrupt, not an image, too small, too large) is refused with its
path, or skipped and listed when the `bad_images` setting is `skip`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnc.data.pillow import open_image
from cnnc.data.streamed import DiskImages
from cnnc.errors import CnncError, DataError
from cnnc.input_limits import MIN_IMAGE_SIDE

IMAGE_FITS = ("resize", "crop")
BAD_IMAGES = ("refuse", "skip")
TEST_FRACTION = 0.2
SPLIT_FOLDERS = {"train": ("train",), "validation": ("val", "validation"), "test": ("test",)}
ORDER_SEED = 0x636E6E63  # 'cnnc': the fixed file order, the same whatever the training seed
WORKERS = min(8, os.cpu_count() or 1)
IN_FLIGHT = 256  # images decoded ahead of storing them, at most


@dataclass(frozen=True)
class FolderPart:
    images: np.ndarray | DiskImages  # (N, H, W) or (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int32


@dataclass(frozen=True)
class FolderData:
    train: FolderPart
    validation: FolderPart | None
    test: FolderPart
    class_names: tuple[str, ...]
    skipped: tuple[str, ...]  # "PATH: reason" for each file skipped (bad_images: skip)
    notes: tuple[str, ...]  # how the folder was read, for the run's header


def shown(path: Path | str) -> str:
    """A path fit to print: bytes that are not UTF-8 as \\x escapes (never a crash on output)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_image_folder(folder: Path) -> bool:
    """True when `folder` has a subfolder (a class, or train/): worth reading as an image folder."""
    try:
        return folder.is_dir() and any(p.is_dir() and not p.name.startswith(".")
                                       for p in folder.iterdir())
    except OSError:
        return False


def _subfolders(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir(), key=lambda p: os.fsencode(p.name))
    except OSError as err:
        raise DataError(f"{shown(folder)}: cannot list the folder ({err.strerror or err})") \
            from None
    return [p for p in entries if p.is_dir() and not p.name.startswith(".")]


def _class_folders(folder: Path) -> dict[str, Path]:
    classes = {}
    for sub in _subfolders(folder):
        try:
            sub.name.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(f"{shown(folder)}: the class folder {shown(sub.name)!r} has a name "
                            "that is not valid UTF-8; class names must be text",
                            hint="rename the folder") from None
        classes[sub.name] = sub
    if not classes:
        raise DataError(f"{shown(folder)}: no class folders in it",
                        hint="an image folder holds one subfolder of images per class")
    return classes


def _files(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir(), key=lambda p: os.fsencode(p.name))
    except OSError as err:
        raise DataError(f"{shown(folder)}: cannot list the folder ({err.strerror or err})") \
            from None
    return [p for p in entries if not p.name.startswith(".") and not p.is_dir()]


def _listing(classes: dict[str, Path], names: tuple[str, ...]) -> tuple[list[Path], np.ndarray]:
    paths, labels = [], []
    for index, name in enumerate(names):
        if name not in classes:
            continue
        files = _files(classes[name])
        if not files:
            raise DataError(f"{shown(classes[name])}: the class folder '{name}' holds no files",
                            hint="every class folder needs at least one image; remove it or "
                                 "add images")
        paths += files
        labels += [index] * len(files)
    return paths, np.asarray(labels, dtype=np.int32)


def _fixed_order(n: int) -> np.ndarray:
    return np.random.default_rng(ORDER_SEED).permutation(n)


def decode_image(path: Path, shape: tuple[int, int, int], fit: str) -> np.ndarray:
    """One image file as uint8 (H, W) or (H, W, 3) for `shape`; CnncError naming the file."""
    from PIL import Image

    h, w, c = shape
    if not path.is_file():
        raise DataError(f"{shown(path)}: not a regular file")
    image = open_image(path, DataError)
    iw, ih = image.size
    if min(iw, ih) < MIN_IMAGE_SIDE:
        raise DataError(f"{shown(path)}: the image is {iw}x{ih} pixels, less than the "
                        f"{MIN_IMAGE_SIDE} a side cnnc trains on")
    image = image.convert("L" if c == 1 else "RGB")
    if fit == "crop":
        # The largest centred box of the input's aspect ratio (w/h), in the image's pixels.
        if iw * h > ih * w:
            cw, ch = max(1, round(ih * w / h)), ih
        else:
            cw, ch = iw, max(1, round(iw * h / w))
        left, top = (iw - cw) // 2, (ih - ch) // 2
        image = image.crop((left, top, left + cw, top + ch))
    if image.size != (w, h):
        image = image.resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _decode_all(paths: list[Path], labels: np.ndarray, shape: tuple[int, int, int], fit: str,
                bad: str, skipped: list[str], progress: bool, stream: bool = False
                ) -> FolderPart:
    def one(path: Path) -> np.ndarray | str:
        try:
            return decode_image(path, shape, fit)
        except CnncError as err:
            # A file name that is not UTF-8 is shown with escapes: the list is printed.
            message = err.message.replace(str(path), shown(path))
            if bad == "refuse":
                raise DataError(message, hint="remove or fix the file, or set "
                                "train.bad_images: skip (--bad-images skip) to skip such "
                                "files") from None
            return message

    h, w, c = shape
    image_shape = (h, w) + ((3,) if c == 3 else ())
    # Streamed: rows of a temporary file (cnnc/data/streamed.py), else one array in memory.
    out = DiskImages(image_shape, len(paths)) if stream \
        else np.empty((len(paths), *image_shape), dtype=np.uint8)
    keep = np.ones(len(paths), dtype=bool)
    bar = None
    if progress and len(paths) >= 2000:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), desc="reading images", unit="img", leave=False,
                   disable=None)
    with ThreadPoolExecutor(WORKERS) as pool:
        # A chunk at a time, so that at most IN_FLIGHT decoded images wait to be stored
        # (Executor.map would start every file at once and hold what it decoded ahead).
        for first in range(0, len(paths), IN_FLIGHT):
            chunk = paths[first:first + IN_FLIGHT]
            for i, result in enumerate(pool.map(one, chunk), start=first):
                if isinstance(result, str):
                    keep[i] = False
                    skipped.append(result)
                elif stream:
                    out.write(i, result)
                else:
                    out[i] = result
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return FolderPart(out.keep(keep) if stream else out[keep], labels[keep])


def _check_classes(part: FolderPart, names: tuple[str, ...], where: Path) -> None:
    missing = sorted(set(range(len(names))) - set(np.unique(part.labels).tolist()))
    if missing:
        raise DataError(f"{shown(where)}: every image of class '{names[missing[0]]}' was "
                        "skipped as unreadable", hint="see the files listed above")


def load_image_folder(root: Path, shape: tuple[int, ...], fit: str = "resize",
                      bad: str = "refuse", log: Callable[[str], None] | None = None,
                      stream: bool = False) -> FolderData:
    """Read an image folder (see the module doc) into uint8 arrays of the input's shape;
    stream: the training images into a temporary file instead (cnnc/data/streamed.py)."""
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise DataError(f"{shown(root)}: an image folder feeds inputs of shape (H, W, 1) or "
                        f"(H, W, 3); the spec's input is {tuple(shape)}")
    h, w, c = (int(d) for d in shape)
    top = {p.name: p for p in _subfolders(root)}
    split = {role: next((top[n] for n in names if n in top), None)
             for role, names in SPLIT_FOLDERS.items()}
    notes = []
    if split["train"] is not None:
        classes = _class_folders(split["train"])
        names = tuple(classes)
        others = {role: _class_folders(split[role]) for role in ("validation", "test")
                  if split[role] is not None}
        for role, folders in others.items():
            extra = sorted(set(folders) - set(names))
            if extra:
                raise DataError(f"{shown(split[role])}: class folder '{extra[0]}' is not one of "
                                f"train/'s classes ({', '.join(names)})")
        listed = {"train": _listing(classes, names)}
        listed.update({role: _listing(f, names) for role, f in others.items()})
        notes.append("layout    " + ", ".join(f"{split[r].name}/" for r in ("train",
                     *others)))
    else:
        classes = _class_folders(root)
        names = tuple(classes)
        listed = {"train": _listing(classes, names)}
        others = {}
    if "test" not in listed:
        paths, labels = listed["train"]
        order = _fixed_order(len(paths))
        paths, labels = [paths[i] for i in order], labels[order]
        cut = len(paths) - max(1, round(len(paths) * TEST_FRACTION))
        if cut <= 0:
            raise DataError(f"{shown(root)}: {len(paths)} image(s) are too few to hold out a "
                            "test set", hint="add images, or a test/ folder")
        listed["train"], listed["test"] = (paths[:cut], labels[:cut]), (paths[cut:],
                                                                         labels[cut:])
        notes.append(f"test      no test/ folder: the last {TEST_FRACTION:.0%} of the files in "
                     "a fixed shuffled order")
    else:
        paths, labels = listed["train"]
        order = _fixed_order(len(paths))
        listed["train"] = ([paths[i] for i in order], labels[order])
    skipped: list[str] = []
    total = sum(len(p) for p, _ in listed.values())
    if log is not None and total >= 2000:
        log(f"reading {total:,} images from {shown(root)} on {WORKERS} threads")
    # The progress bar of a large folder's first scan shows on a terminal only (tqdm's
    # disable=None), whoever reads the folder.
    parts = {role: _decode_all(p, lab, (h, w, c), fit, bad, skipped, True,
                               stream=stream and role == "train")
             for role, (p, lab) in listed.items()}
    for role in ("train", "test"):
        if parts[role].labels.size == 0:
            raise DataError(f"{shown(root)}: no readable images for the {role} set")
    _check_classes(parts["train"], names, root)
    notes.append(f"images    {', '.join(f'{r} {len(p.labels):,}' for r, p in parts.items())}, "
                 f"{len(names)} classes, fitted to {h}x{w} by {fit}, "
                 f"{'grayscale' if c == 1 else 'RGB'}"
                 + (", training images streamed from a temporary file" if stream else ""))
    return FolderData(parts["train"], parts.get("validation"), parts["test"], names,
                      tuple(skipped), tuple(notes))
