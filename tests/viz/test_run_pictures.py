"""Curves, confusion matrix, mistakes (cnnc/viz/curves.py, confusion.py, mistakes.py)."""

from __future__ import annotations

import math

import numpy as np
from png_checks import check_figure

from cnnc.train.loop import History
from cnnc.train.metrics import evaluation_from_predictions
from cnnc.viz.confusion import class_scores
from cnnc.viz.mistakes import confident_mistakes, mistakes_figure

RECORDS = [
    {"epoch": 1, "loss": 1.2, "accuracy": 0.6, "val_loss": 0.9, "val_accuracy": 0.7,
     "learning_rate": 0.001},
    {"epoch": 2, "loss": 0.8, "accuracy": 0.75, "val_loss": 0.7, "val_accuracy": 0.78,
     "learning_rate": 0.0005},
    {"epoch": 3, "loss": 0.6, "accuracy": 0.8, "val_loss": None, "val_accuracy": None,
     "learning_rate": 0.0001},
]


def test_curves_have_loss_accuracy_and_learning_rate():
    fig = History(RECORDS).show_curves()
    check_figure(fig)
    loss, acc, lr = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy (%)", "Learning rate"]
    train, val = loss.lines
    assert list(train.get_xdata()) == [1, 2, 3] and list(val.get_xdata()) == [1, 2]
    assert list(acc.lines[0].get_ydata()) == [60.0, 75.0, 80.0]
    assert list(lr.lines[0].get_ydata()) == [0.001, 0.0005, 0.0001]


def test_curves_of_one_epoch_and_of_none_are_still_pictures():
    check_figure(History(RECORDS[:1]).show_curves())
    fig = History([]).show_curves()
    assert fig.axes[0].texts[0].get_text() == "no epochs yet"


CONFUSION = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # rows: true; class 2 has no examples


def test_precision_and_recall_by_hand():
    a, b, c = class_scores(CONFUSION, ("a", "b", "c"))
    assert (a.precision, a.recall, a.support) == (5 / 7, 5 / 6, 6)
    assert (b.precision, b.recall) == (3 / 4, 3 / 5)
    assert math.isclose(b.f1, 2 * 0.75 * 0.6 / 1.35)
    assert math.isnan(c.precision) and math.isnan(c.recall) and c.support == 0


def test_confusion_counts_and_row_colours():
    labels = np.array([0] * 6 + [1] * 5)
    probs = np.eye(3)[[0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1]]
    ev = evaluation_from_predictions("sparse_categorical_crossentropy", probs, labels,
                                     ("a", "b", "c"))
    assert (ev.confusion == CONFUSION).all()
    fig = ev.show_confusion()
    check_figure(fig)
    ax = fig.axes[0]
    shown = np.asarray(ax.images[0].get_array())
    assert np.allclose(shown[0], [5 / 6, 1 / 6, 0]) and np.allclose(shown[2], 0)
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3", "5"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]


def test_the_most_confident_mistakes_come_first():
    labels = np.array([0, 1, 2, 0, 1])
    probs = np.array([[0.9, 0.1, 0], [0.6, 0.4, 0], [0.05, 0.9, 0.05], [0.2, 0.7, 0.1],
                      [0.1, 0.9, 0]])
    assert list(confident_mistakes(probs, labels, 5)) == [2, 3, 1]
    assert list(confident_mistakes(probs, labels, 2)) == [2, 3]
    x = np.random.default_rng(0).random((5, 8, 8, 1))
    fig = mistakes_figure(x, labels, probs, ("a", "b", "c"))
    check_figure(fig)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["true c\npredicted b 90%", "true a\npredicted b 70%",
                      "true b\npredicted a 60%"]


def test_no_mistakes_is_said_not_drawn_blank():
    probs = np.eye(3)
    fig = mistakes_figure(np.zeros((3, 4, 4, 1)), np.arange(3), probs)
    assert fig.axes[0].texts[0].get_text() == "no mistakes"


def test_a_model_shows_its_mistakes_on_given_data(small_model):
    from matplotlib.figure import Figure

    rng = np.random.default_rng(4)
    x = rng.random((10, 12, 12, 1)).astype(np.float32)
    probs = small_model.predict(x)
    labels = (np.argmax(probs, axis=1) + 1) % 10  # every prediction wrong
    fig = small_model.show_mistakes(x, labels, count=4)
    assert isinstance(fig, Figure)
    assert len([ax for ax in fig.axes if ax.get_title()]) == 4
    assert "4 of 10 wrong out of 10" in fig.get_suptitle()
