"""The float64 arbiter of cross-backend step tests (cnnc/testing/arbiter.py): it takes a judged
backend's ReLU and max-pool decisions where they are float32 ties, and nowhere else.

Each check compares the arbiter's step with a plain float64 step of a network nudged (by 1e-10
or less) so that float64 decides as the judged backend did: they must agree to rounding, and
differ from float64's own decision by far more, so that taking the decision matters."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.testing.arbiter import (
    arbiter_graph,
    decision_values,
    float64_step_as,
    judged_step,
    split_relus,
)
from cnnc.testing.nets import chain

Y = np.array([0, 2])


def _model(graph, weights=None, dtype="float64"):
    model = cnnc.compile(graph, backend="numpy", dtype=dtype,
                         loss="sparse_categorical_crossentropy",
                         optimizer={"name": "sgd", "learning_rate": 1.0}, seed=3)
    if weights is not None:
        model.set_weights(weights)
    return model


def _update(model, before, step) -> dict[str, np.ndarray]:
    step(model)
    return {k: v - before[k] for k, v in model.get_weights().items()}


def _distance(a: dict, b: dict) -> float:
    """The largest difference of two steps' updates, relative to the largest update."""
    return max(float(np.abs(a[k] - b[k]).max()) for k in b) / max(
        float(np.abs(v).max()) for v in b.values())


# ---------------------------------------------------------------- ReLU

RELU_NET = chain((4, 4, 1), ("conv2d", 2, 3, {"padding": "same", "activation": "relu"}),
                 ("flatten",), ("dense", 3))
X = np.random.default_rng(0).uniform(-1, 1, (2, 4, 4, 1))
E = (0, 1, 2, 0)  # the element whose ReLU decision is judged


def _preactivation(weights) -> np.ndarray:
    model = _model(RELU_NET, weights)
    graph = arbiter_graph(model)
    exe = model.backend.compile(graph, len(X))
    from cnnc.testing.arbiter import _feeds
    return exe.run(_feeds(model, X, Y, graph), ["conv2d/preact"])["conv2d/preact"]


def _with_preactivation_at_e(value: float) -> dict[str, np.ndarray]:
    """Weights under which the pre-activation at E is `value` (float64 rounding aside)."""
    weights = _model(RELU_NET).get_weights()
    bias = weights["conv2d/bias"].copy()
    bias[E[3]] += value - _preactivation(weights)[E]
    return {**weights, "conv2d/bias": bias}


def _rounded_relu(weights) -> dict[str, np.ndarray]:
    """float64's ReLU output rounded to float32: a reference whose distance is rounding."""
    return {"conv2d": np.maximum(_preactivation(weights), 0).astype(np.float32)}


def _judged_relu(weights, value_at_e: float) -> dict[str, np.ndarray]:
    """A float32 backend's ReLU output: float64's rounded, but `value_at_e` at E."""
    y = _rounded_relu(weights)["conv2d"]
    y[E] = value_at_e
    return {"conv2d": y}


def _arbiter_update(weights, judged):
    model = _model(RELU_NET, weights)
    report = {}
    update = _update(model, weights, lambda m: report.setdefault(
        "r", float64_step_as(m, X, Y, judged, reference=_rounded_relu(weights))))
    return update, report["r"]


def test_split_relus_keeps_the_values_and_names_the_preactivation():
    split = split_relus(RELU_NET)
    assert split.node("conv2d").op == "activation"
    assert split.node("conv2d/preact").attrs["activation"] == "linear"
    assert decision_values(arbiter_graph(_model(RELU_NET))) == ("conv2d",)
    want = _model(RELU_NET).predict(X)
    weights = _model(RELU_NET).get_weights()
    got = cnnc.compile(split, backend="numpy", dtype="float64")
    got.set_weights(weights)
    np.testing.assert_allclose(got.predict(X), want, rtol=1e-12)


def test_arbiter_takes_a_relu_decision_at_the_boundary():
    """Float64's pre-activation at E is -1e-10, the backend passed E at +1e-10 (float32
    rounding of values of order 1 is 1e-8): the arbiter's step is float64's with E on."""
    weights = _with_preactivation_at_e(-1e-10)
    got, report = _arbiter_update(weights, _judged_relu(weights, 1e-10))
    assert report.taken == {"conv2d": 1} and not report.refused, report
    on = _with_preactivation_at_e(1e-10)
    want = _update(_model(RELU_NET, on), on, lambda m: m.train_step(X, Y))
    own = _update(_model(RELU_NET, weights), weights, lambda m: m.train_step(X, Y))
    assert _distance(got, want) < 1e-8
    assert _distance(own, want) > 1e-3  # the decision moves the update: the check can bite


def test_arbiter_refuses_a_relu_decision_far_from_the_boundary():
    """Float64's pre-activation at E is -0.3: a backend that passed it decided on a wrong
    value, whatever its output there (near 0, or 0.3 as if the sign were lost)."""
    weights = _with_preactivation_at_e(-0.3)
    own = _update(_model(RELU_NET, weights), weights, lambda m: m.train_step(X, Y))
    for value in (1e-10, 0.3):
        got, report = _arbiter_update(weights, _judged_relu(weights, value))
        assert report.refused and "conv2d(0, 1, 2, 0)" in report.refused[0], report
        assert report.taken == {"conv2d": 0}
        assert _distance(got, own) < 1e-10  # float64 kept its own decision


def test_arbiter_refuses_a_backend_whose_values_are_not_rounding():
    """A backend 1e-3 off everywhere has no ties to claim: its band is refused."""
    weights = _with_preactivation_at_e(-1e-10)
    judged = _judged_relu(weights, 1e-10)
    judged["conv2d"] = np.where(judged["conv2d"] > 0, judged["conv2d"] + 1e-3, 0)
    _, report = _arbiter_update(weights, judged)
    assert any("more than rounding" in r for r in report.refused), report


def test_arbiter_without_flips_is_the_float64_step():
    weights = _model(RELU_NET).get_weights()
    judged = _judged_relu(weights, 0.0)
    judged["conv2d"][E] = max(_preactivation(weights)[E], 0)
    got, report = _arbiter_update(weights, judged)
    assert not report.refused and report.taken == {"conv2d": 0}
    own = _update(_model(RELU_NET, weights), weights, lambda m: m.train_step(X, Y))
    assert _distance(got, own) < 1e-12


# ---------------------------------------------------------------- max-pool

# A 3x3 convolution that passes its input through (pool_weights): the maxima are the input's,
# and its kernel's gradient tells which cell of a window the gradient went to.
POOL_NET = chain((4, 4, 1), ("conv2d", 1, 3, {"use_bias": False, "padding": "same"}),
                 ("maxpool2d", 2), ("flatten",), ("dense", 3))


def _pool_input(first: float) -> np.ndarray:
    """Window (0, 0) of example 0 holds `first` then 0.7 (row-major), others below 0.5."""
    x = np.random.default_rng(1).uniform(0, 0.5, (2, 4, 4, 1))
    x[0, 0, 0, 0], x[0, 0, 1, 0] = first, 0.7
    return x


def _pool_weights() -> dict[str, np.ndarray]:
    weights = _model(POOL_NET).get_weights()
    kernel = np.zeros_like(weights["conv2d/kernel"])
    kernel[1, 1] = 1
    return {**weights, "conv2d/kernel": kernel}


def test_arbiter_takes_a_max_pool_choice_that_float32_rounding_made():
    """0.7 - 1e-12 and 0.7 round to the same float32: a float32 backend's first maximum is the
    first cell, float64's the second. The arbiter routes the gradient as float32 did."""
    weights = _pool_weights()
    x = _pool_input(0.7 - 1e-12)
    f32 = _model(POOL_NET, weights, dtype="float32")
    values = decision_values(arbiter_graph(f32))
    assert values == ("conv2d",)
    _, judged = judged_step(f32, x.astype(np.float32), Y, values)
    model = _model(POOL_NET, weights)
    report = {}
    got = _update(model, weights, lambda m: report.setdefault(
        "r", float64_step_as(m, x, Y, judged)))  # judged by NumPy float32 itself: no cap
    assert report["r"].taken == {"conv2d -> max_pooling2d": 1}, report["r"]
    assert not report["r"].refused
    first = _pool_input(0.7 + 1e-12)
    want = _update(_model(POOL_NET, weights), weights, lambda m: m.train_step(first, Y))
    own = _update(_model(POOL_NET, weights), weights, lambda m: m.train_step(x, Y))
    # The window now holds the backend's float32 values: rounding (1e-8) apart from `want`.
    assert _distance(got, want) < 1e-6
    assert _distance(own, want) > 1e-3


@pytest.mark.parametrize("first", [0.7, 0.9])
def test_arbiter_refuses_a_max_pool_choice_far_from_a_tie(first):
    """Float64's window holds 0.699 then 0.7; a backend whose first cell holds 0.7 (a tie it
    breaks to the first) or 0.9 computed that cell 1e-3 or more off: not rounding, refused."""
    weights = _pool_weights()
    x = _pool_input(0.7 - 1e-3)
    judged_x = x.astype(np.float32)
    judged_x[0, 0, 0, 0] = first
    model = _model(POOL_NET, weights)
    report = {}
    got = _update(model, weights, lambda m: report.setdefault(
        "r", float64_step_as(m, x, Y, {"conv2d": judged_x},
                             reference={"conv2d": x.astype(np.float32)})))
    assert len(report["r"].refused) == 1 and "window (0, 0, 0, 0)" in report["r"].refused[0]
    own = _update(_model(POOL_NET, weights), weights, lambda m: m.train_step(x, Y))
    assert _distance(got, own) < 1e-12
