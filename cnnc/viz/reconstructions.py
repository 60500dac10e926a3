"""An autoencoder's test images above its reconstructions (`reconstructions.png` of a run whose
train target is the input), each reconstruction captioned with its own PSNR."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cnnc.train.metrics import psnr
from cnnc.viz.canvas import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PANEL_IN = 1.3  # inches per image


def _image(a: np.ndarray) -> np.ndarray:
    """(H, W, C) in [0, 1] as matplotlib shows it: grey for one channel, RGB for three."""
    a = np.clip(np.asarray(a, dtype=np.float64), 0.0, 1.0)
    return a[..., 0] if a.shape[-1] == 1 else a


def reconstructions_figure(x: np.ndarray, pred: np.ndarray, *, count: int = 8,
                           title: str = "Reconstructions") -> Figure:
    """x: inputs (N, H, W, C) in [0, 1]; pred: the model's outputs of the same shape. The first
    `count` images: originals in the top row, reconstructions below."""
    x, pred = np.asarray(x), np.asarray(pred)
    n = max(1, min(count, len(x)))
    fig = new_figure(max(n * PANEL_IN, 4.0), 2 * PANEL_IN + 0.9, layout="constrained")
    fig.suptitle(title, fontsize=12)
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        for row, (images, label) in enumerate(((x, "input"), (pred, "output"))):
            ax = axes[row][i]
            ax.imshow(_image(images[i]), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 1:
                mse = float(((pred[i].astype(np.float64) - x[i]) ** 2).mean())
                ax.set_title(f"{psnr(mse):.1f} dB", fontsize=8)
            if i == 0:
                ax.set_ylabel(label, fontsize=9)
    return fig
