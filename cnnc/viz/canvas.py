"""Figures without a display: matplotlib's object API only (no pyplot), and atomic PNG files.

Building `matplotlib.figure.Figure` directly draws with Agg whatever the interactive backend
is, so `cnnc show` and `cnnc run` work headless (no $DISPLAY) and never open a window, while a
notebook still displays the figures it is handed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from cnnc.atomic import atomic_write
from cnnc.errors import CnncError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100  # pixels per inch of every PNG cnnc writes: a figure of w x h inches is 100w x 100h
MAX_INCHES = 60.0  # a figure this large is a bug in a layout, not a picture anyone can read

# Colours shared by the pictures: data series, and a background for empty grid cells.
TRAIN_COLOUR = "#1f77b4"
VALIDATION_COLOUR = "#d62728"
EMPTY_CELL = "#ffffff"


def new_figure(width: float, height: float, **options) -> Figure:
    """A figure of width x height inches at DPI; `options` go to matplotlib's Figure."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CnncError("drawing pictures needs matplotlib",
                        hint="pip install matplotlib (scripts/setup.sh installs it)") from None
    width, height = min(width, MAX_INCHES), min(height, MAX_INCHES)
    return Figure(figsize=(width, height), dpi=DPI, **options)


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG at its own size (no tight bounding box: sizes stay predictable)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write the figure to `path` as PNG, atomically."""
    return atomic_write(path, png_bytes(fig))


def pixel_size(fig: Figure) -> tuple[int, int]:
    """(width, height) in pixels of the PNG `save_png` writes."""
    w, h = fig.get_size_inches()
    return round(w * DPI), round(h * DPI)
