"""Checks of a written picture: a real PNG of the promised size, with something drawn in it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from cnnc.viz.canvas import pixel_size, png_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_png(data: bytes | Path) -> np.ndarray:
    """The pixels (H, W, 3) of PNG data or a PNG file, checking that it is a PNG."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    assert raw[:8] == PNG_SIGNATURE, "not a PNG file"
    image = Image.open(io.BytesIO(raw))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def assert_drawn(pixels: np.ndarray, *, min_colours: int = 8) -> None:
    """Not blank: many distinct colours, and the ink is spread over the picture rather than
    in one corner (every quarter of the picture has some non-white pixels)."""
    flat = pixels.reshape(-1, 3).astype(np.int32)
    colours = len(np.unique(flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2]))
    assert colours >= min_colours, f"only {colours} colours: the picture looks blank"
    h, w = pixels.shape[:2]
    ink = (pixels < 250).any(axis=2)
    quarters = [ink[:h // 2, :w // 2], ink[:h // 2, w // 2:], ink[h // 2:, :w // 2],
                ink[h // 2:, w // 2:]]
    assert sum(q.any() for q in quarters) >= 3, "drawing confined to one part of the picture"


def check_figure(fig, path: Path | None = None) -> np.ndarray:
    """The figure's PNG (or the file written from it) has the figure's pixel size and is drawn."""
    pixels = load_png(path if path is not None else png_bytes(fig))
    assert (pixels.shape[1], pixels.shape[0]) == pixel_size(fig)
    assert_drawn(pixels)
    return pixels
