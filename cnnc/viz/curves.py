"""Training curves (`curves.png` of a run): loss and accuracy per epoch, and the learning rate.

Training figures are averages over each epoch's batches (dropout active, as Keras reports
them); validation figures are measured after the epoch. The records are the run's
metrics.json rows, or a History's `.epochs`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cnnc.viz.canvas import TRAIN_COLOUR, VALIDATION_COLOUR, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for rec in records:
        value = rec.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            xs.append(int(rec["epoch"]))
            ys.append(float(value))
    return xs, ys


def _panel(ax: Axes, records: Sequence[dict[str, Any]], key: str, title: str,
           percent: bool = False) -> None:
    for prefix, label, colour in (("", "training", TRAIN_COLOUR),
                                  ("val_", "validation", VALIDATION_COLOUR)):
        xs, ys = _series(records, prefix + key)
        if xs:
            ys = [100 * y for y in ys] if percent else ys
            ax.plot(xs, ys, marker="o", markersize=4, color=colour, label=label)
            ax.annotate(f"{ys[-1]:.1f}%" if percent else f"{ys[-1]:.3f}", (xs[-1], ys[-1]),
                        textcoords="offset points", xytext=(6, 0), va="center", fontsize=8,
                        color=colour)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)


def curves_figure(records: Sequence[dict[str, Any]], *, title: str = "Training") -> Figure:
    """Loss, accuracy and learning rate against the epoch, one panel each."""
    from matplotlib.ticker import FuncFormatter

    fig = new_figure(13.0, 4.0, layout="constrained")
    loss_ax, acc_ax, lr_ax = fig.subplots(1, 3)
    _panel(loss_ax, records, "loss", "Loss")
    _panel(acc_ax, records, "accuracy", "Accuracy (%)", percent=True)
    xs, ys = _series(records, "learning_rate")
    if xs:
        lr_ax.plot(xs, ys, marker="o", markersize=4, color="#555555")
        # Plain numbers (0.001), not an offset factor above the axis that readers miss.
        lr_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        lr_ax.set_ylim(0, max(ys) * 1.15)  # from zero: a constant rate reads as constant
    lr_ax.set_title("Learning rate", fontsize=11)
    lr_ax.set_xlabel("epoch")
    lr_ax.grid(alpha=0.3)
    epochs = sorted({int(r["epoch"]) for r in records if "epoch" in r})
    for ax in (loss_ax, acc_ax, lr_ax):
        if epochs:
            step = max(1, math.ceil(len(epochs) / 12))
            ax.set_xticks(epochs[::step])
            ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.8)
    if not records:
        for ax in (loss_ax, acc_ax, lr_ax):
            ax.text(0.5, 0.5, "no epochs yet", ha="center", va="center",
                    transform=ax.transAxes, color="#888888")
    fig.suptitle(title, fontsize=13)
    return fig
