"""Many small images as one mosaic: one panel per filter or feature map, drawn as one image.

A figure with one matplotlib axes per panel takes seconds for a few hundred panels; a mosaic is
one `imshow` however many panels it holds. Gaps and unused cells are NaN, which the colour map
draws as the background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """One mosaic as drawn, kept on the figure (`figure.cnnc_grids`) so that tests and tools can
    check what a picture holds: its title, the mosaic, and its panels' size and number."""

    title: str
    image: np.ndarray
    panel_h: int
    panel_w: int
    count: int


def grid_shape(count: int, cols: int) -> tuple[int, int]:
    """(rows, cols) for `count` panels at most `cols` wide."""
    cols = max(1, min(cols, count))
    return math.ceil(count / cols), cols


def square_cols(count: int, aspect: float = 1.5) -> int:
    """Columns for a grid of `count` panels about `aspect` times wider than tall or squarer,
    preferring a column count that fills the last row (64 panels: 8 x 8, 128: 16 x 8)."""
    root = math.sqrt(count)
    for cols in range(math.ceil(root), math.floor(root * aspect) + 1):
        if count % cols == 0:
            return cols
    return max(1, min(count, math.ceil(math.sqrt(count * aspect))))


def occupied(count: int, cols: int, h: int, w: int, gap: int = 1) -> np.ndarray:
    """A mask of a mosaic's pixels that belong to a panel or to a gap between two panels;
    False for the empty cells after the last panel (drawn as background, not as gaps)."""
    rows, cols = grid_shape(count, cols)
    mask = np.zeros((rows * (h + gap) - gap, cols * (w + gap) - gap), dtype=bool)
    for i in range(count):
        r, c = divmod(i, cols)
        right = c + 1 < cols and i + 1 < count
        below = i + cols < count
        y, x = r * (h + gap), c * (w + gap)
        mask[y:y + h + (gap if below else 0), x:x + w + (gap if right else 0)] = True
    return mask


def mosaic(panels: np.ndarray, cols: int, gap: int = 1) -> np.ndarray:
    """Panels (N, h, w) or (N, h, w, 3) tiled row by row into one float array, `gap` NaN pixels
    between panels; cells past the last panel are NaN."""
    panels = np.asarray(panels, dtype=np.float64)
    n, h, w = panels.shape[:3]
    rows, cols = grid_shape(n, cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, *panels.shape[3:]), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = panels[i]
    return out


def panel_origin(index: int, cols: int, h: int, w: int, gap: int = 1) -> tuple[int, int]:
    """(row, column) of the top-left pixel of panel `index` in a mosaic."""
    r, c = divmod(index, cols)
    return r * (h + gap), c * (w + gap)


def count_panels(image: np.ndarray, h: int, w: int, gap: int = 1) -> int:
    """How many cells of a mosaic hold a panel (any non-NaN pixel): for tests and checks."""
    rows = (image.shape[0] + gap) // (h + gap)
    cols = (image.shape[1] + gap) // (w + gap)
    count = 0
    for r in range(rows):
        for c in range(cols):
            cell = image[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w]
            count += int(not np.isnan(cell).all())
    return count
