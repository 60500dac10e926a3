"""A run's pictures and its report page, written into the run folder at the end of `cnnc run`.

    curves.png      loss, accuracy and learning rate per epoch
    confusion.png   the test confusion matrix
    mistakes.png    the most confidently wrong test images
    filters.png     the first convolution's filters
    reconstructions.png   an autoencoder's test images and its outputs (instead of the
                    confusion matrix and the mistakes, which need classes)
    report.html     one page with the summary, the settings, those pictures and per-class
                    precision and recall: plain HTML and CSS, no script, nothing fetched,
                    pictures referenced by name next to it, so a browser opens it from disk

Each picture is drawn on its own: one that fails is left out of the page with a note (and
reported to the caller), never taking the others or the run's results with it.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnc.atomic import atomic_write
from cnnc.ir.graph import Graph
from cnnc.train.metrics import Evaluation, ReconstructionEvaluation

CURVES_PNG = "curves.png"
CONFUSION_PNG = "confusion.png"
MISTAKES_PNG = "mistakes.png"
FILTERS_PNG = "filters.png"
RECONSTRUCTIONS_PNG = "reconstructions.png"
REPORT_HTML = "report.html"
# Files of the run folder the page links to, when they exist (cnnc/train/rundir.py).
LINKED_FILES = ("summary.txt", "spec.yaml", "metrics.csv", "test_metrics.json",
                "confusion_matrix.csv", "weights.safetensors")


@dataclass
class RunReport:
    """What the report shows; everything but the name and graph may be missing."""

    name: str
    graph: Graph
    status: str = "finished"
    settings: list[tuple[str, str]] = field(default_factory=list)  # (label, value) rows
    history: list[dict[str, Any]] = field(default_factory=list)  # metrics.json rows
    test: Evaluation | ReconstructionEvaluation | None = None
    test_x: np.ndarray | None = None  # the test inputs, for the mistakes
    test_labels: np.ndarray | None = None
    test_probs: np.ndarray | None = None  # the model's outputs on them
    weights: Mapping[str, np.ndarray] | None = None
    test_inputs: np.ndarray | None = None  # a denoising autoencoder's noisy test inputs


@dataclass
class Picture:
    file: str
    title: str
    caption: str
    error: str | None = None  # why it was not drawn


def _draw(folder: Path, file: str, make: Callable[[], Any]) -> str | None:
    """Draw and save one picture; the error text if that failed."""
    from cnnc.viz.canvas import save_png

    try:
        fig = make()
        if fig is None:
            return "nothing to draw"
        save_png(fig, folder / file)
    except Exception as err:  # noqa: BLE001 (a picture must never cost the run its results)
        return f"{type(err).__name__}: {err}"
    return None


def draw_pictures(folder: Path, report: RunReport) -> list[Picture]:
    """Write the run's pictures into `folder`; one Picture per picture, drawn or not."""
    from cnnc.viz.confusion import confusion_figure
    from cnnc.viz.curves import curves_figure
    from cnnc.viz.filters import conv_layers, filters_of
    from cnnc.viz.mistakes import mistakes_figure
    from cnnc.viz.reconstructions import reconstructions_figure

    name, test = report.name, report.test
    pictures = [
        Picture(CURVES_PNG, "Training curves",
                "Training loss and accuracy are averages over each epoch's batches (dropout on); "
                "validation is measured after each epoch."),
    ]
    pictures[-1].error = _draw(folder, CURVES_PNG, lambda: curves_figure(
        report.history, title=f"{name}: training"))
    if isinstance(test, ReconstructionEvaluation):
        if report.test_probs is not None and report.test_x is not None:
            pictures.append(Picture(RECONSTRUCTIONS_PNG, "Reconstructions (test set)",
                                    "The first test images, the network's outputs for them "
                                    "(each with its PSNR) and, for a denoising autoencoder, "
                                    "the noisy images it was given."))
            pictures[-1].error = _draw(folder, RECONSTRUCTIONS_PNG, lambda: reconstructions_figure(
                report.test_x, report.test_probs, noisy=report.test_inputs,
                title=f"{name}: test mse {test.mse:.5f}, psnr {test.psnr:.2f} dB"))
        test = None  # no classes: no confusion matrix, no mistakes
    elif test is not None:
        pictures.append(Picture(CONFUSION_PNG, "Confusion matrix (test set)",
                                "Rows are true classes, columns predicted ones; colour is the "
                                "share of the row."))
        pictures[-1].error = _draw(folder, CONFUSION_PNG, lambda: confusion_figure(
            test.confusion, test.class_names,
            title=f"{name}: test accuracy {test.accuracy:.2%} ({test.correct:,} of "
                  f"{test.count:,})"))
    if report.test_probs is not None and report.test_x is not None and test is not None:
        pictures.append(Picture(MISTAKES_PNG, "Most confident mistakes",
                                "Test images the model got wrong, the most confident first."))
        pictures[-1].error = _draw(folder, MISTAKES_PNG, lambda: mistakes_figure(
            report.test_x, report.test_labels, report.test_probs,
            test.class_names if test is not None else (), title=f"{name}: most confident "
            "mistakes"))
    convs = conv_layers(report.graph)
    if report.weights is not None and convs:
        first = convs[0]
        pictures.append(Picture(FILTERS_PNG, f"Filters of the first convolution ({first.name})",
                                "What each filter of the first layer responds to."))
        pictures[-1].error = _draw(folder, FILTERS_PNG, lambda: filters_of(
            report.graph, report.weights, first.name))
    return pictures


def _pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.1%}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(f'<{tag}{" class=num" if i in numeric else ""}>{html.escape(v)}</{tag}>'
                       for i, v in enumerate(values))
    body = "".join(f"<tr>{cells('td', r)}</tr>" for r in rows)
    return f"<table><thead><tr>{cells('th', head)}</tr></thead><tbody>{body}</tbody></table>"


def _epochs_table(history: list[dict[str, Any]]) -> str:
    def num(rec: dict[str, Any], key: str, fmt: str) -> str:
        value = rec.get(key)
        return format(value, fmt) if isinstance(value, (int, float)) else "–"

    rows = [[str(r.get("epoch", "")), num(r, "loss", ".4f"), num(r, "accuracy", ".2%"),
             num(r, "val_loss", ".4f"), num(r, "val_accuracy", ".2%"),
             num(r, "learning_rate", ".3g"), num(r, "time_s", ".1f")] for r in history]
    return _table(["epoch", "loss", "accuracy", "val. loss", "val. accuracy", "learning rate",
                   "time (s)"], rows, set(range(7)))


def _confused_list(test: Evaluation) -> str:
    from cnnc.viz.confusion import most_confused

    pairs = most_confused(test.confusion, test.class_names)
    if not pairs:
        return ""
    items = "".join(f"<li>{html.escape(c.true)} taken for {html.escape(c.predicted)}: "
                    f"{c.count:,} ({c.share:.1%} of {html.escape(c.true)})</li>" for c in pairs)
    return f"<h3>Most often confused</h3><ol>{items}</ol>"


def _scores_table(test: Evaluation) -> str:
    from cnnc.viz.confusion import class_scores

    scores = class_scores(test.confusion, test.class_names)
    rows = [[s.name, _pct(s.precision), _pct(s.recall), _pct(s.f1), f"{s.support:,}"]
            for s in scores]
    return _table(["class", "precision", "recall", "F1", "examples"], rows, {1, 2, 3, 4})


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1150px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
.key { font-size: 1.15em; margin: .4em 0 1em; }
.key b { font-size: 1.3em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { padding: .25em .8em; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.settings th { background: none; font-weight: 600; vertical-align: top; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.caption { color: #555; font-size: .92em; margin: .2em 0 .6em; }
.missing { color: #a33; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .88em; line-height: 1.35; }
h3 { font-size: 1.05em; margin: 1.2em 0 .3em; }
ol { margin: .3em 0; padding-left: 1.4em; font-size: .92em; }
.pair { display: flex; flex-wrap: wrap; gap: 0 2em; align-items: flex-start; }
.pair .wide { flex: 1 1 560px; min-width: 0; }
.pair .side { flex: 0 1 390px; }
.pair .side td:first-child { white-space: nowrap; }
.files a { margin-right: 1em; }
"""


def report_html(report: RunReport, pictures: Sequence[Picture], links: Sequence[str] = ()
                ) -> str:
    """The report page; pictures and links are file names in the same folder."""
    from cnnc.ir.summary import summary_text

    esc = html.escape
    by_file = {p.file: p for p in pictures}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>cnnc run: {esc(report.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>cnnc run: {esc(report.name)}</h1>",
        (f'<p class="caption">{esc(report.status)}; report written '
         f"{esc(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>"),
    ]
    test = report.test
    if isinstance(test, ReconstructionEvaluation):
        parts.append(f'<p class="key">Test mean squared error <b>{test.mse:.5f}</b>, PSNR '
                     f"{test.psnr:.2f} dB ({test.count:,} images)</p>")
        test = None  # what follows is about classes
    if test is not None:
        parts.append(f'<p class="key">Test accuracy <b>{test.accuracy:.2%}</b> '
                     f"({test.correct:,} of {test.count:,}), loss {test.loss:.4f}</p>")

    def figure(file: str) -> None:
        pic = by_file.get(file)
        if pic is None:
            return
        parts.append(f"<h2>{esc(pic.title)}</h2>")
        if pic.error is None:
            parts.append(f'<p class="caption">{esc(pic.caption)}</p>')
            parts.append(f'<img src="{esc(pic.file)}" alt="{esc(pic.title)}">')
        else:
            parts.append(f'<p class="missing">Not drawn: {esc(pic.error)}</p>')

    if report.settings:
        parts.append("<h2>Settings</h2>")
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                       for k, v in report.settings)
        parts.append(f'<table class="settings">{rows}</table>')
    figure(CURVES_PNG)
    if report.history:
        parts.append(_epochs_table(report.history))
    if test is not None:
        # The matrix and the per-class scores side by side: they answer the same question.
        parts.append('<div class="pair"><div class="wide">')
        figure(CONFUSION_PNG)
        parts.append('</div><div class="side">')
        parts.append("<h2>Per class (test set)</h2>")
        parts.append('<p class="caption">Precision: of the images predicted as the class, the '
                     "share that are. Recall: of the images of the class, the share found.</p>")
        parts.append(_scores_table(test))
        parts.append(_confused_list(test))
        parts.append("</div></div>")
    figure(RECONSTRUCTIONS_PNG)
    figure(MISTAKES_PNG)
    figure(FILTERS_PNG)
    parts.append("<h2>Network</h2>")
    parts.append('<p class="caption">RF: each layer\'s receptive field on the input (size, '
                 "jump between neighbouring outputs, first input pixel; negative inside the "
                 "padding).</p>")
    parts.append(f"<pre>{esc(summary_text(report.graph, rf=True))}</pre>")
    if links:
        parts.append("<h2>Files</h2>")
        parts.append('<p class="files">' + "".join(
            f'<a href="{esc(name)}">{esc(name)}</a>' for name in links) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(folder: str | Path, report: RunReport) -> list[str]:
    """Draw the pictures and write report.html into `folder`; returns what failed (empty when
    everything was drawn)."""
    folder = Path(folder)
    pictures = draw_pictures(folder, report)
    links = [name for name in LINKED_FILES if (folder / name).is_file()]
    atomic_write(folder / REPORT_HTML, report_html(report, pictures, links))
    return [f"{p.file}: {p.error}" for p in pictures if p.error is not None]
