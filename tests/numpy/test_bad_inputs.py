"""Bad data handed to a model: each is an InputError naming what is wrong, never a NumPy error."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.errors import InputError
from cnnc.inputs import DOT_CHECK_LIMIT, FeedChecks, all_finite, input_feeds
from cnnc.model import compile_model
from cnnc.testing.nets import chain


@pytest.fixture(scope="module")
def model():
    return compile_model(chain((4, 4, 1), ("conv2d", 2, 3), ("flatten",),
                               ("dense", 3, {"activation": "softmax"})))


X = np.zeros((2, 4, 4, 1), dtype=np.float32)
Y = np.array([0, 2])


@pytest.mark.parametrize("x,message", [
    (np.zeros((2, 5, 4, 1), np.float32),
     "input 'input_layer' expects shape (N, 4, 4, 1), received (2, 5, 4, 1)"),
    (np.zeros((2, 16), np.float32),
     "input 'input_layer' expects shape (N, 4, 4, 1), received (2, 16)"),
    (np.zeros((4, 4, 1), np.float32),
     ("expects a batch of shape (N, 4, 4, 1), received one example of shape (4, 4, 1); "
      "add a batch axis: x[None]")),
    (np.zeros((2, 4, 4, 1), np.uint8),
     "input 'input_layer' expects floating-point values, received uint8; convert explicitly"),
    (np.zeros((2, 4, 4, 1), np.int32), "expects floating-point values, received int32"),
    (np.zeros((0, 4, 4, 1), np.float32), "input 'input_layer' is an empty batch (0 examples)"),
    (np.array([]), "expects shape (N, 4, 4, 1), received (0,)"),
    (np.full((2, 4, 4, 1), np.nan, np.float32),
     "input 'input_layer' contains 32 NaN or infinite value(s), the first at index (0, 0, 0, 0)"),
    (np.where(np.arange(32).reshape(2, 4, 4, 1) == 17, np.inf, 0.0),
     "contains 1 NaN or infinite value(s), the first at index (1, 0, 1, 0)"),
    ("images", "input 'input_layer' must be a numeric array, received dtype <U6"),
])
def test_bad_images(model, x, message):
    for call in (lambda: model.predict(x), lambda: model.train_step(x, Y)):
        with pytest.raises(InputError) as info:
            call()
        assert message in info.value.render()


@pytest.mark.parametrize("y,message", [
    (np.array([0.0, 1.0]), ("labels must be integer class ids, received float64; convert them "
                            "with y.astype('int32')")),
    (np.array([0, 3]), "label 3 at index (1,) is not a class id in 0..2"),
    (np.array([-1, 0]), "label -1 at index (0,) is not a class id in 0..2"),
    (np.array([0, 1, 2]), "the batch has 2 inputs but 3 targets"),
    (np.zeros((2, 3), int), ("labels must have shape (N) for predictions of shape (None, 3), "
                             "received (2, 3)")),
])
def test_bad_labels(model, y, message):
    with pytest.raises(InputError) as info:
        model.train_step(X, y)
    assert message in info.value.render()


def test_labels_of_shape_n_by_1_and_any_integer_dtype_are_accepted(model):
    assert np.isfinite(model.train_step(X, np.array([[0], [2]], dtype=np.uint8)))


def test_dense_targets_are_checked():
    m = compile_model(chain((3,), ("dense", 2)), loss="mse")
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(InputError, match="targets must have shape \\(N, 2\\) for predictions of "
                                         "shape \\(None, 2\\), received \\(2,\\)"):
        m.train_step(x, np.zeros(2))
    with pytest.raises(InputError, match="the targets contain 1 NaN"):
        m.train_step(x, np.array([[0.0, np.nan], [0, 0]]))
    assert m.train_step(x, np.ones((2, 2), dtype=np.int64)) == pytest.approx(1.0)


def test_bad_batch_size(model):
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InputError, match="batch_size must be a positive integer"):
            model.predict(X, batch_size=bad)


def test_dict_inputs_must_name_the_inputs(model):
    with pytest.raises(InputError, match="inputs are input_layer; missing input_layer; "
                                         "unknown images"):
        model.predict({"images": X})


@pytest.mark.parametrize("values,finite", [
    (np.zeros((2, 3), np.float32), True),
    (np.zeros((0, 3), np.float32), True),
    # the sum overflows, the values are finite: the check must look at each
    (np.full((4, 100), 60000, np.float16), True),
    (np.full((2, 3), 3e38, np.float32), True),
    (np.array([1.0, np.nan], np.float32), False),
    (np.array([np.inf, -np.inf]), False),
    (np.array([[0.0, -np.inf]], np.float16), False),
    # a batch-1 classifier's output, checked value by value (ITEM_CHECK_LIMIT)
    (np.array([[0.1] * 9 + [np.nan]], np.float32), False),
    (np.array([[0.1] * 9 + [np.inf]], np.float32).T, False),
    # the sum of squares overflows, the values are finite
    (np.full((1, 28, 28, 1), 1e20, np.float32), True),
    (np.full((3, 4), -1e200), True),
    (np.ones((8, 8), np.float32)[:, ::3], True),  # not contiguous
    (np.array([2.0, np.nan, 3.0], np.float32)[::2], True),  # a view skipping the NaN
    # a bad value in an array too long for the sum of squares
    (np.concatenate([np.zeros(DOT_CHECK_LIMIT, np.float32), [np.nan]]), False),
    (np.concatenate([np.full(DOT_CHECK_LIMIT, 1e20, np.float32), [1.0]]), True),
])
def test_all_finite(values, finite):
    assert all_finite(values) is finite


def test_all_finite_takes_a_small_finite_array_in_one_blas_call(monkeypatch):
    """Model.predict checks a batch-1 input and output on every call: a sum of squares (one
    call) settles a finite array, without np.isfinite's boolean array and its reduction."""
    def refuse(*args, **kwargs):
        raise AssertionError("np.isfinite called on a finite array with a finite sum")

    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    monkeypatch.setattr(np, "isfinite", refuse)
    assert all_finite(x) is True
    x[0, 5, 5, 0] = np.nan
    with pytest.raises(AssertionError, match="np.isfinite called"):
        all_finite(x)  # a sum that is not finite is settled element by element


def test_checks_kept_per_graph_take_exactly_what_input_feeds_takes(model):
    """FeedChecks' quick way (a float batch of the right shape) and the general one agree: the
    same arrays back, the same refusals (test_bad_images runs predict on one model, so its
    checks are the kept ones)."""
    checks = FeedChecks(model.graph)
    big = np.full((2, 4, 4, 1), 3e38, np.float32)  # finite, though the sum overflows
    for x in (X, big, X.astype(np.float64), X[:, ::-1]):
        got = checks(x)["input_layer"]
        assert got is input_feeds(model.graph, x)["input_layer"] and got is x
    for bad in (np.full((1, 4, 4, 1), np.inf, np.float32), X[:0], X[0], X.reshape(2, 16)):
        with pytest.raises(InputError):
            checks(bad)


def test_one_batch_and_several_give_the_same_predictions(model):
    x = np.random.default_rng(1).random((5, 4, 4, 1), np.float32)
    whole = model.predict(x, batch_size=8)
    # (NumPy's matrix products may round a batch of 1 or 2 apart from one of 5)
    np.testing.assert_allclose(whole, model.predict(x, batch_size=2), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(whole[:1], model.predict(x[:1], batch_size=1), rtol=1e-5,
                               atol=1e-7)
