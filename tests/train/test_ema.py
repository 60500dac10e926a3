"""The moving average of the weights (the optimizer's use_ema/ema_momentum; cnnc/ir/ema.py,
cnnc/passes/ema.py, cnnc/train/ema.py): the average against a hand-computed sequence, on both
backends; validation and the end of training on the averaged weights, as Keras' fit."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.train.ema import averaged_weights

SPEC = ("input 2\ndense 1 use_bias=false\n"
        "train {{ loss mse\n optimizer sgd learning_rate=0.1{opt} }}")
X = np.array([[1.0, 2.0], [0.5, -1.0]])
Y = np.array([[1.0], [0.0]])


def _sequence(steps: int, lr: float = 0.1) -> list[np.ndarray]:
    """The weights after each SGD step on X, Y from (0, 0), computed here: mse's gradient is
    2/N X^T (X w - Y)."""
    w, out = np.zeros((2, 1)), []
    for _ in range(steps):
        w = w - lr * 2 / len(X) * X.T @ (X @ w - Y)
        out.append(w.ravel().copy())
    return out


@pytest.mark.parametrize("backend", ["numpy", "opencl"])
def test_average_follows_the_hand_computed_sequence(backend, opencl_status):
    if backend == "opencl" and not opencl_status[0]:
        pytest.skip(opencl_status[1])
    options = {"dtype": "float64"} if backend == "numpy" else {}
    model = cnnc.compile(SPEC.format(opt=" use_ema=true ema_momentum=0.8"), backend=backend,
                         **options)
    model.set_weights({"dense/kernel": np.zeros((2, 1))})
    weights = _sequence(4)
    # Keras: the average is the weights after step 1, then 0.8 * average + 0.2 * weights.
    want = weights[0]
    rtol = 1e-14 if backend == "numpy" else 1e-6
    for t in range(4):
        model.train_step(X, Y)
        if t:
            want = 0.8 * want + 0.2 * weights[t]
        state = model.get_training_state()
        np.testing.assert_allclose(state["dense/kernel"].ravel(), weights[t], rtol=rtol)
        np.testing.assert_allclose(state["slot/dense/kernel/ema"].ravel(), want, rtol=rtol)
    # Evaluation swaps the average in and puts the weights back exactly.
    raw = model.get_weights()["dense/kernel"].copy()
    with averaged_weights(model):
        np.testing.assert_allclose(model.predict(X).ravel(), X @ want, rtol=rtol)
    np.testing.assert_array_equal(model.get_weights()["dense/kernel"], raw)


CLASSIFIER = """input 3
dense 2 softmax
train {{ epochs 2
 batch_size 4
 shuffle false
 optimizer sgd learning_rate=0.5{opt} }}"""


def test_fit_validates_on_and_ends_with_the_averaged_weights():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), np.array([0, 1, 1, 0])
    xv, yv = rng.normal(size=(3, 3)), np.array([1, 0, 1])
    # The same steps without the average: one step an epoch, the weights after each.
    plain = cnnc.compile(CLASSIFIER.format(opt=""), backend="numpy", dtype="float64")
    raw = []
    for _ in range(2):
        plain.fit(x, y, epochs=1, verbose=0)
        raw.append(plain.get_weights())
    model = cnnc.compile(CLASSIFIER.format(opt=" use_ema=true ema_momentum=0.25"),
                         backend="numpy", dtype="float64")
    history = model.fit(x, y, validation_data=(xv, yv), verbose=0)
    average = {k: 0.25 * raw[0][k] + 0.75 * raw[1][k] for k in raw[0]}
    got = model.get_weights()  # the average, once fit has ended
    for k, value in average.items():
        np.testing.assert_allclose(got[k], value, rtol=1e-13)
    # Validation after each epoch saw the average so far (after epoch 1: the weights).
    for epoch, weights in enumerate((raw[0], average)):
        plain.set_weights(weights)
        want = plain.evaluate(xv, yv, verbose=0).loss
        np.testing.assert_allclose(history.history["val_loss"][epoch], want, rtol=1e-12)


def test_average_is_off_by_default_and_checked():
    from cnnc.errors import SpecError

    plain = cnnc.compile(SPEC.format(opt=""), backend="numpy").training_graph()
    assert "ema_update" not in [n.op for n in plain.nodes]
    with pytest.raises(SpecError, match=r"ema_momentum=1\.5"):
        cnnc.load_spec(SPEC.format(opt=" use_ema=true ema_momentum=1.5"))
