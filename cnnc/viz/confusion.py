"""The test confusion matrix as a picture (`confusion.png`), and per-class precision and recall.

Rows are true classes, columns predicted ones; each cell shows its count, and its colour is the
count's share of its row, so a class's errors stand out however many examples it has.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cnnc.viz.canvas import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class ClassScores:
    name: str
    precision: float  # of the examples predicted as this class, the share that are (NaN: none)
    recall: float  # of the examples of this class, the share predicted as it (NaN: none)
    f1: float
    support: int  # examples of this class


def class_scores(confusion: np.ndarray, class_names: Sequence[str] = ()) -> list[ClassScores]:
    """Precision, recall and F1 of each class from a confusion matrix (rows: true class)."""
    m = np.asarray(confusion, dtype=np.int64)
    names = list(class_names) or [str(i) for i in range(m.shape[0])]
    out = []
    for i, name in enumerate(names[:m.shape[0]]):
        tp, predicted, actual = int(m[i, i]), int(m[:, i].sum()), int(m[i].sum())
        p = tp / predicted if predicted else math.nan
        r = tp / actual if actual else math.nan
        f1 = 2 * p * r / (p + r) if p + r > 0 else (0.0 if predicted and actual else math.nan)
        out.append(ClassScores(name, p, r, f1, actual))
    return out


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str] = (), *,
                     title: str = "Confusion matrix") -> Figure:
    m = np.asarray(confusion, dtype=np.int64)
    k = m.shape[0]
    names = list(class_names)[:k] or [str(i) for i in range(k)]
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros(m.shape, dtype=np.float64), where=rows > 0)
    cell = 0.62 if k <= 12 else max(0.25, 7.5 / k)
    side = cell * k
    fig = new_figure(side + 3.6, side + 2.4, layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    ax.text(j, i, f"{m[i, j]:,}", ha="center", va="center",
                            fontsize=8 if m.max() < 10_000 else 7,
                            color="white" if share[i, j] > 0.55 else "#222222")
    ax.set_xticks(range(k), names, rotation=40, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_yticks(range(k), names, fontsize=9)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=12)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class (row)")
    return fig
