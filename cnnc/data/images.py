"""Inputs for `cnnc predict`: image files and arrays turned into (N, H, W, C) floats in [0, 1].

PNG/JPEG (anything Pillow reads) become one example each: converted to grayscale (or RGB for a
3-channel input), fitted into a square without distortion, resized to the input's height and
width. Large images are reduced in 8 bits first, and ones over
cnnc.input_limits.MAX_IMAGE_PIXELS are refused from their header. Fashion-MNIST shows light
objects on a black background, so a photo with a light background is inverted ('auto' decides
from the border pixels). IDX and .npy files may hold one image (H, W[, C]) or many
(N, H, W[, C]) under cnnc/inputs.py's contract for files (uint8 pixels, floats in [0, 1]);
uint8 values are divided by 255 as in training (not with `raw`, for a model whose own
`rescaling` layer scales them: then 0..255 values, scaled once, by the model). A folder stands
for the image files under it (sorted, at any depth); a .npz for its x_test array (or x, or its
only array).
With `fit` (the weights were trained on an image folder), image files are decoded exactly as
that folder's were (cnnc/data/folder.py: resize or crop, no inversion unless asked).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnc.data.dataset import scale_pixels
from cnnc.data.idx import read_idx
from cnnc.data.pillow import open_image as _open_image
from cnnc.errors import DataError, InputError
from cnnc.files import check_regular, open_regular
from cnnc.input_limits import MAX_NPY_BYTES, WORK_IMAGE_SIDE, size_text
from cnnc.inputs import file_pixels, shape_error

ARRAY_SUFFIXES = (".npy", ".npz")
NPZ_KEYS = ("x_test", "x")  # the .npz member predict reads, in order of preference
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Inputs:
    x: np.ndarray  # (N, H, W, C) float32 in [0, 1]
    names: tuple[str, ...]  # one per example: the file, with [i] for arrays of many
    notes: tuple[str, ...] = ()  # things done that a user should know (inversion)


def _is_idx(path: Path) -> bool:
    name = path.name.lower()
    return "idx" in name or name.endswith(("-ubyte", "-ubyte.gz"))


def _scale(array: np.ndarray, what: str, raw: bool = False) -> np.ndarray:
    # The one input contract (cnnc/inputs.py): uint8 pixels, floats in [0, 1], other integers
    # only for a model that rescales its input.
    return scale_pixels(file_pixels(array, what, raw), raw)


def _shape_array(array: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """(H, W), (H, W, C), (N, H, W) or (N, H, W, C) to (N, *shape)."""
    h, w, c = shape
    if array.shape == (h, w) and c == 1 or array.shape == (h, w, c):
        array = array[None]
    if array.ndim == 3 and array.shape[1:] == (h, w) and c == 1:
        array = array[..., None]
    if array.ndim != 4 or array.shape[1:] != (h, w, c):
        want = f"{h}x{w}" + (f"x{c}" if c != 1 else "")
        raise shape_error(what, shape, array.shape,
                          hint=f"give one {want} image or a stack N x {want}")
    return array


def _load_npy(path: Path) -> np.ndarray:
    """A .npy array, its header checked against the file and MAX_NPY_BYTES before the data
    is read: a header may claim any shape, and np.load would allocate it first."""
    fmt = np.lib.format
    with open_regular(path, InputError, ".npy file") as f:
        try:
            version = fmt.read_magic(f)
            read_header = (fmt.read_array_header_1_0 if version == (1, 0)
                           else fmt.read_array_header_2_0)
            shape, _, dtype = read_header(f)
            if dtype.hasobject:
                raise ValueError("it holds Python objects, which cnnc does not load")
            want = math.prod(shape) * dtype.itemsize
            have = os.fstat(f.fileno()).st_size - f.tell()
            if want > have:
                raise ValueError(f"truncated: the header declares {shape} values of {dtype} "
                                 f"({size_text(want)}) but only {size_text(have)} follow")
            if want > MAX_NPY_BYTES:
                raise ValueError(f"the array is {size_text(want)}, more than the "
                                 f"{size_text(MAX_NPY_BYTES)} cnnc reads")
            f.seek(0)
            return np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise InputError(f"{path}: not a readable .npy array ({err})") from None


def _load_npz(path: Path) -> np.ndarray:
    from cnnc.data.arrays import read_npz

    members = read_npz(path)
    key = next((k for k in NPZ_KEYS if k in members), None)
    if key is None and len(members) == 1:
        key = next(iter(members))
    if key is None:
        raise InputError(f"{path}: no {' or '.join(NPZ_KEYS)} array in it (it has "
                         f"{', '.join(sorted(members)) or 'none'})",
                         hint="save the images to predict as x_test (or x)")
    return members[key]


def _load_array(path: Path, shape: tuple[int, ...], raw: bool = False,
                name: str | None = None) -> np.ndarray:
    suffix = path.suffix.lower()
    array = (_load_npy(path) if suffix == ".npy" else _load_npz(path) if suffix == ".npz"
             else read_idx(path))
    what = f"{path}: input '{name}'" if name else str(path)
    return _scale(_shape_array(np.asarray(array), shape, what), what, raw)


def _shrink(image, mode: str):
    """The image reduced (in 8 bits, keeping its aspect) to at most WORK_IMAGE_SIDE a side, so
    that the float work after costs little whatever the photo's size; `mode` is the one to
    convert to should Pillow not resize the image's own."""
    from PIL import Image

    if max(image.size) <= WORK_IMAGE_SIDE:
        return image
    try:
        image.thumbnail((WORK_IMAGE_SIDE, WORK_IMAGE_SIDE), Image.Resampling.LANCZOS)
    except ValueError:  # a mode resize does not take (16-bit, CMYK, ...)
        image = image.convert(mode)
        image.thumbnail((WORK_IMAGE_SIDE, WORK_IMAGE_SIDE), Image.Resampling.LANCZOS)
    return image


def _load_image(path: Path, shape: tuple[int, ...], invert: str, raw: bool = False
                ) -> tuple[np.ndarray, bool]:
    from PIL import Image

    h, w, c = shape
    if c not in (1, 3):
        raise InputError(f"{path}: image files can feed 1- or 3-channel inputs, the model "
                         f"takes {c} channels", hint="pass a .npy array instead")
    image = _open_image(path)
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
    image = _shrink(image, "RGBA" if image.mode == "RGBA" else "L" if c == 1 else "RGB")
    if image.mode == "RGBA":
        # Transparent pixels count as background: composite onto white like a viewer shows it.
        rgba = image
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    image = image.convert("L" if c == 1 else "RGB")
    pixels = scale_pixels(np.asarray(image))
    flipped = False
    border = np.concatenate([pixels[0].ravel(), pixels[-1].ravel(), pixels[:, 0].ravel(),
                             pixels[:, -1].ravel()])
    if invert == "yes" or (invert == "auto" and border.mean() > 0.5):
        pixels = 1.0 - pixels
        flipped = True
    # Fit into a square (pad with the background, now dark) so the aspect ratio is kept.
    ih, iw = pixels.shape[:2]
    side = max(ih, iw)
    square = np.zeros((side, side) + pixels.shape[2:], dtype=np.float32)
    top, left = (side - ih) // 2, (side - iw) // 2
    square[top:top + ih, left:left + iw] = pixels
    pil = Image.fromarray(np.round(square * 255).astype(np.uint8))  # 2-D: L, HxWx3: RGB
    resized = pil.resize((w, h), Image.Resampling.LANCZOS)
    out = scale_pixels(np.asarray(resized), raw)
    return out.reshape(1, h, w, c), flipped


def _expand(paths: Sequence[str]) -> list[Path]:
    """The files named, a folder standing for the image files under it (sorted, any depth,
    names starting with '.' left out)."""
    out = []
    for text in paths:
        path = Path(text)
        if not path.is_dir():
            out.append(path)
            continue
        found = sorted((p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                        and p.is_file() and not any(part.startswith(".")
                                                    for part in p.relative_to(path).parts)),
                       key=lambda p: os.fsencode(p))
        if not found:
            raise InputError(f"{path}: the folder holds no image files",
                             hint=f"image files end in {', '.join(IMAGE_SUFFIXES)}")
        out += found
    return out


def _load_training_image(path: Path, shape: tuple[int, ...], fit: str, invert: str,
                         raw: bool = False) -> np.ndarray:
    from cnnc.data.folder import decode_image

    h, w, c = shape
    try:
        pixels = scale_pixels(decode_image(path, shape, fit), raw)
    except DataError as err:
        raise InputError(err.message, hint=err.hint) from None
    if invert == "yes":
        pixels = (np.float32(255.0) if raw else np.float32(1.0)) - pixels
    return pixels.reshape(1, h, w, c)


def load_inputs(paths: Sequence[str], shape: Sequence[int], invert: str = "auto",
                fit: str | None = None, raw: bool = False, name: str | None = None) -> Inputs:
    """Every file as model inputs of `shape` (H, W, C); errors name the file (and the input,
    `name`). fit: decode images as an image folder's were in training (resize or crop), not as
    photos. raw: the model's own rescaling layer scales pixels (cnnc.data.dataset.raw_pixels):
    0..255 values."""
    shape = tuple(int(d) for d in shape)
    if len(shape) != 3:
        raise InputError(f"predict takes image-shaped inputs (H, W, C); the model's input is "
                         f"{shape}")
    xs, names, notes = [], [], []
    for path in _expand(paths):
        check_regular(path, InputError, "input file")
        suffix = path.suffix.lower()
        if suffix in ARRAY_SUFFIXES or _is_idx(path):
            try:
                array = _load_array(path, shape, raw, name)
            except DataError as err:
                raise InputError(err.message, file=err.file, hint=err.hint) from None
            xs.append(array)
            names += [str(path)] if len(array) == 1 else [f"{path}[{i}]" for i in range(len(array))]
        elif fit is not None:
            xs.append(_load_training_image(path, shape, fit, invert, raw))
            names.append(str(path))
        else:
            array, flipped = _load_image(path, shape, invert, raw)
            xs.append(array)
            names.append(str(path))
            if flipped:
                notes.append(f"{path}: light background, inverted to match the training images")
    if not xs:
        raise InputError("no input files given")
    return Inputs(np.concatenate(xs).astype(np.float32), tuple(names), tuple(notes))
