"""Metrics: Keras' losses from predictions, accuracy, confusion matrix, running means."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.train.metrics import (
    RunningMetrics,
    confusion_matrix,
    evaluation_from_predictions,
    format_confusion,
    per_example_loss,
    targets_for,
)


def test_cross_entropy_matches_keras_clipping():
    pred = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0]], np.float32)
    loss = per_example_loss("sparse_categorical_crossentropy", pred, np.array([0, 0]))
    assert loss[0] == pytest.approx(-np.log(0.7))
    assert loss[1] == pytest.approx(-np.log(1e-7))  # clipped, not infinite


def test_cross_entropy_normalises_probabilities():
    pred = np.array([[2.0, 2.0]])
    assert per_example_loss("categorical_crossentropy", pred, np.array([1]))[0] == \
        pytest.approx(np.log(2))


def test_mean_squared_error_on_one_hot():
    pred = np.array([[0.5, 0.5]])
    assert per_example_loss("mean_squared_error", pred, np.array([0]))[0] == pytest.approx(0.25)


def test_targets_for_each_loss():
    labels = np.array([2, 0])
    assert targets_for("sparse_categorical_crossentropy", labels, 3).dtype == np.int32
    np.testing.assert_array_equal(targets_for("categorical_crossentropy", labels, 3),
                                  [[0, 0, 1], [1, 0, 0]])


def test_confusion_matrix_rows_are_true_classes():
    m = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_evaluation_summary():
    pred = np.eye(3)[[0, 1, 1, 2]]
    ev = evaluation_from_predictions("sparse_categorical_crossentropy", pred,
                                     np.array([0, 1, 2, 2]), ("a", "b", "c"))
    assert (ev.correct, ev.count, ev.accuracy) == (3, 4, 0.75)
    d = ev.to_dict()
    assert d["per_class_accuracy"] == {"a": 1.0, "b": 1.0, "c": 0.5}
    assert d["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    text = format_confusion(ev.confusion, ev.class_names)
    assert text.splitlines()[3].split() == ["c", "0", "1", "1"]


def test_running_metrics_weight_batches_by_size():
    r = RunningMetrics()
    r.add(1.0, np.eye(2)[[0, 0, 0]], np.array([0, 0, 1]))
    r.add(4.0, np.eye(2)[[1]], np.array([1]))
    assert r.loss == pytest.approx((3 * 1.0 + 4.0) / 4)
    assert r.accuracy == 0.75
    again = RunningMetrics.from_state(r.state())
    assert (again.loss, again.accuracy) == (r.loss, r.accuracy)
