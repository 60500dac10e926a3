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


@dataclass(frozen=True)
class Confusion:
    true: str
    predicted: str
    count: int
    share: float  # of the true class's examples


def most_confused(confusion: np.ndarray, class_names: Sequence[str] = (), count: int = 5
                  ) -> list[Confusion]:
    """The largest off-diagonal cells: which classes the model takes for which, most first."""
    m = np.asarray(confusion, dtype=np.int64)
    names = list(class_names) or [str(i) for i in range(m.shape[0])]
    rows = m.sum(axis=1)
    cells = [(int(m[i, j]), i, j) for i in range(m.shape[0]) for j in range(m.shape[1])
             if i != j and m[i, j] > 0]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [Confusion(names[i], names[j], n, n / rows[i]) for n, i, j in cells[:count]]


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str] = (), *,
                     title: str = "Confusion matrix") -> Figure:
    m = np.asarray(confusion, dtype=np.int64)
    k = m.shape[0]
    names = list(class_names)[:k] or [str(i) for i in range(k)]
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros(m.shape, dtype=np.float64), where=rows > 0)
    # About 7 inches for ten classes: the report shows it beside the per-class table at about
    # its own size, so the counts stay readable.
    cell = 0.5 if k <= 12 else max(0.25, 6.0 / k)
    side = cell * k
    fig = new_figure(side + 2.4, side + 1.8, layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    ax.text(j, i, f"{m[i, j]:,}", ha="center", va="center",
                            fontsize=9 if m.max() < 1_000 else 8,
                            color="white" if share[i, j] > 0.55 else "#222222")
    ax.set_xticks(range(k), names, rotation=40, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_yticks(range(k), names, fontsize=9)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=11)
    fig.colorbar(im, ax=ax, shrink=0.8, fraction=0.05, label="share of the true class (row)")
    return fig
