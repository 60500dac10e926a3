"""An autoencoder's reconstructions of test images (`reconstructions.png` of a run whose train
target is the input): its outputs, each captioned with its PSNR, above the images themselves,
below the noisy images it was given when it is a denoising one."""

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


def reconstructions_figure(x: np.ndarray, pred: np.ndarray, *, noisy: np.ndarray | None = None,
                           count: int = 8, title: str = "Reconstructions") -> Figure:
    """x: the clean images (N, H, W, C) in [0, 1]; pred: the model's outputs of the same shape;
    noisy: what the model was given instead of x (a denoising autoencoder), or None. The first
    `count` images, one row each: the noisy inputs, then the outputs, then the clean images."""
    x, pred = np.asarray(x), np.asarray(pred)
    n = max(1, min(count, len(x)))
    rows = [(pred, "output"), (x, "target" if noisy is not None else "input")]
    if noisy is not None:
        rows.insert(0, (np.asarray(noisy), "noisy input"))
    fig = new_figure(max(n * PANEL_IN, 4.0), len(rows) * PANEL_IN + 0.9, layout="constrained")
    fig.suptitle(title, fontsize=12)
    axes = fig.subplots(len(rows), n, squeeze=False)
    for i in range(n):
        for row, (images, label) in enumerate(rows):
            ax = axes[row][i]
            ax.imshow(_image(images[i]), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if images is pred:
                mse = float(((pred[i].astype(np.float64) - x[i]) ** 2).mean())
                ax.set_title(f"{psnr(mse):.1f} dB", fontsize=8)
            if i == 0:
                ax.set_ylabel(label, fontsize=9)
    return fig
