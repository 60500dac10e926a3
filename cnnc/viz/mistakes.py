"""The most confidently wrong predictions as a grid of images (`mistakes.png` of a run).

Each panel shows an image the model got wrong, with its true class and the predicted class and
probability; the most confident mistakes come first: they show what the model has learned
wrongly (or which labels are doubtful), rather than the near misses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cnnc.viz.canvas import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLS = 6
PANEL_IN = 1.85  # inches per panel: room for "predicted T-shirt/top 99.6%" at 9 points


def _percent(p: float) -> str:
    """97%; 99.6% rather than a rounded 100% for a prediction that was not certain."""
    if p < 0.995:
        return f"{p:.0%}"
    return f"{p:.1%}" if p < 0.9995 else ">99.9%"


def confident_mistakes(probs: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to `count` wrong predictions, the most confident first."""
    probs = np.asarray(probs)
    predicted = np.argmax(probs, axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(labels))
    confidence = probs[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count]


def mistakes_figure(x: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                    class_names: Sequence[str] = (), *, count: int = 24,
                    title: str = "Most confident mistakes") -> Figure:
    """x: the model's inputs (N, H, W, C) in [0, 1]; probs: its outputs (N, classes)."""
    probs = np.asarray(probs)
    labels = np.asarray(labels)
    names = list(class_names)

    def name(c: int) -> str:
        return names[c] if c < len(names) else f"class {c}"

    picked = confident_mistakes(probs, labels, count)
    wrong = int(np.count_nonzero(np.argmax(probs, axis=1) != labels))
    cols = max(1, min(COLS, len(picked)))
    rows = max(1, -(-len(picked) // cols))
    fig = new_figure(max(cols * PANEL_IN, 6.0), rows * (PANEL_IN + 0.15) + 0.9,
                     layout="constrained")
    fig.suptitle(f"{title}: {len(picked)} of {wrong:,} wrong out of {len(labels):,}",
                 fontsize=13)
    if not len(picked):
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
        return fig
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, i in zip(axes, picked):
        image = x[i]
        if image.shape[-1] == 1:
            ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(np.clip(image[..., :3], 0, 1), interpolation="nearest")
        p = int(np.argmax(probs[i]))
        ax.set_title(f"true {name(int(labels[i]))}\npredicted {name(p)} {_percent(probs[i, p])}",
                     fontsize=9, linespacing=1.15)
    return fig


def show_mistakes(model, x=None, y=None, *, count: int = 24, data_dir=None) -> Figure:
    """A compiled model's most confident mistakes on (x, y), or on its dataset's test set."""
    from cnnc.data.catalog import DATASETS
    from cnnc.errors import InputError

    info = DATASETS.get(model.train_config.dataset)
    names = info.class_names if info else ()
    pixels = False  # x holds 0..255 values (the model's rescaling layer scales them)
    if x is None:
        from cnnc.data.dataset import load_configured, raw_pixels, to_inputs

        shape = model.graph.shape_of(model.graph.inputs[0])[1:]
        pixels = raw_pixels(model.graph)
        dataset = load_configured(model.train_config, data_dir, shape, raw=pixels)
        x, labels = to_inputs(dataset.test.images, shape, pixels), dataset.test.labels
        names = dataset.class_names  # the user's own data names its classes itself
    else:
        labels = np.asarray(y)
        if labels.ndim == 2:  # one-hot rows
            labels = np.argmax(labels, axis=1)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) and not np.all(
                labels == np.round(labels)):
            raise InputError("labels must be class indices (N,) or one-hot rows (N, classes)")
        labels = labels.astype(np.int64)
    probs = np.asarray(model.predict(x, batch_size=256))
    shown = np.asarray(x) / np.float32(255.0) if pixels else np.asarray(x)
    return mistakes_figure(shown, labels, probs, names, count=count,
                           title=f"{model.graph.name}: most confident mistakes")
