"""Update ops against hand-computed steps and independent transcriptions of Keras 3.

The references below follow keras/src/optimizers/{sgd,adam,nadam}.py statement by statement,
keeping their own state (Nadam's running u_product), so they share no code with OpDef.scalars.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnc.backends.numpy import NumpyBackend
from cnnc.ir.ops import op_names
from cnnc.testing.nets import single_op


def updater(op, attrs, slots=()):
    g = single_op(op, state={"p": (3,), "g": (3,), **{s: (3,) for s in slots}}, attrs=attrs)
    backend = NumpyBackend("float64")
    backend.init_state(g.state, {s.name: np.zeros(s.shape) for s in g.state})
    exe = backend.compile(g, 1)

    def step(param_grad: np.ndarray, t: int, lr=None) -> None:
        backend.write_state({"g": param_grad})
        exe.run({}, [], step=t, learning_rate=lr)

    return backend, step


def test_moving_average_update__blends_one_row_of_stats():
    g = single_op("moving_average_update", state={"m": (2,), "s": (2, 2)},
                  attrs={"index": 1, "momentum": 0.9})
    b = NumpyBackend("float64")
    b.init_state(g.state, {"m": np.array([1.0, 2.0]), "s": np.array([[3.0, 4.0], [5.0, 6.0]])})
    b.compile(g, 1).run({}, [])
    np.testing.assert_allclose(b.read_state(["m"])["m"], [1.4, 2.4])


def test_sgd_update__plain_momentum_and_nesterov():
    g = np.array([0.5, -1.0, 2.0])
    # Two steps from p = 1 with lr 0.1: plain p = 1 - 0.2 g; momentum v1 = -0.1 g,
    # v2 = 0.9 v1 - 0.1 g = -0.19 g, p = 1 + v1 + v2 = 1 - 0.29 g; nesterov adds
    # 0.9 v - 0.1 g each step: 1 - 0.19 g, then - 0.9 * 0.19 g - 0.1 g: p = 1 - 0.461 g.
    for momentum, nesterov, c in [(0.0, False, 0.2), (0.9, False, 0.29), (0.9, True, 0.461)]:
        want = 1 - c * g
        slots = ("vel",) if momentum else ()
        b, step = updater("sgd_update", {"learning_rate": 0.1, "momentum": momentum,
                                         "nesterov": nesterov}, slots)
        b.write_state({"p": np.ones(3)})
        step(g, 0)
        step(g, 1)
        np.testing.assert_allclose(b.read_state(["p"])["p"], want, rtol=1e-12,
                                   err_msg=f"momentum={momentum} nesterov={nesterov}")


def keras_adam(p, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for it, g in enumerate(grads):  # self.iterations = it
        local_step = it + 1
        alpha = lr * math.sqrt(1 - b2 ** local_step) / (1 - b1 ** local_step)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        p = p - (m * alpha) / (np.sqrt(v) + eps)
    return p


def keras_nadam(p, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    u_product = 1.0
    for it, g in enumerate(grads):
        local_step, next_step = it + 1, it + 2
        u_product = u_product * b1 * (1.0 - 0.5 * 0.96 ** local_step)  # _backend_update_step
        u_t = b1 * (1.0 - 0.5 * 0.96 ** local_step)
        u_t_1 = b1 * (1.0 - 0.5 * 0.96 ** next_step)
        u_product_t_1 = u_product * u_t_1
        beta_2_power = b2 ** local_step
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = u_t_1 * m / (1 - u_product_t_1) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - beta_2_power)
        p = p - (m_hat * lr) / (np.sqrt(v_hat) + eps)
    return p


GRADS = [np.array([0.5, -1.0, 2.0]), np.array([0.1, 0.3, -2.0]), np.array([-0.4, 0.0, 1.0]),
         np.array([1.0, 1.0, 1.0])]


def test_adam_update__first_step_by_hand():
    b, step = updater("adam_update", {"learning_rate": 0.01}, ("m", "v"))
    b.write_state({"p": np.ones(3)})
    step(np.array([0.5, -1.0, 2.0]), 0)
    # t = 1: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1: p -= lr g / (|g| + eps')
    eps_scaled = 1e-7 / math.sqrt(0.001)
    want = 1 - 0.01 * np.array([0.5, -1, 2]) / (np.array([0.5, 1, 2]) + eps_scaled)
    np.testing.assert_allclose(b.read_state(["p"])["p"], want, rtol=1e-12)


@pytest.mark.parametrize("op,reference", [("adam_update", keras_adam),
                                          ("nadam_update", keras_nadam)])
def test_adam_update__matches_keras_over_steps(op, reference):
    b, step = updater(op, {"learning_rate": 0.01}, ("m", "v"))
    p0 = np.array([1.0, -2.0, 0.5])
    b.write_state({"p": p0})
    for t, g in enumerate(GRADS):
        step(g, t)
    np.testing.assert_allclose(b.read_state(["p"])["p"], reference(p0, GRADS, lr=0.01),
                               rtol=1e-13)


def test_nadam_update__matches_keras_over_steps():
    b, step = updater("nadam_update", {"learning_rate": 0.002, "beta_1": 0.8}, ("m", "v"))
    p0 = np.array([1.0, -2.0, 0.5])
    b.write_state({"p": p0})
    for t, g in enumerate(GRADS * 3):
        step(g, t)
    np.testing.assert_allclose(b.read_state(["p"])["p"],
                               keras_nadam(p0, GRADS * 3, lr=0.002, b1=0.8), rtol=1e-13)


def test_nadam_update__learning_rate_override_per_step():
    b, step = updater("nadam_update", {"learning_rate": 0.5}, ("m", "v"))
    p0 = np.array([1.0, -2.0, 0.5])
    b.write_state({"p": p0})
    step(GRADS[0], 0, lr=0.001)
    np.testing.assert_allclose(b.read_state(["p"])["p"], keras_nadam(p0, GRADS[:1], lr=0.001),
                               rtol=1e-13)


def test_sgd_update__decoupled_weight_decay_by_hand():
    g = np.array([0.5, -1.0, 2.0])
    # lr 0.1, weight_decay 0.5: p *= 1 - 0.05 before each step. From p = 1, two plain steps:
    # 0.95 - 0.1 g, then 0.95 (0.95 - 0.1 g) - 0.1 g = 0.9025 - 0.195 g.
    b, step = updater("sgd_update", {"learning_rate": 0.1, "weight_decay": 0.5})
    b.write_state({"p": np.ones(3)})
    step(g, 0)
    step(g, 1)
    np.testing.assert_allclose(b.read_state(["p"])["p"], 0.9025 - 0.195 * g, rtol=1e-12)


def test_adamw_update__first_step_by_hand():
    b, step = updater("adamw_update", {"learning_rate": 0.01, "weight_decay": 0.1}, ("m", "v"))
    b.write_state({"p": np.ones(3)})
    step(np.array([0.5, -1.0, 2.0]), 0)
    # p *= 1 - 0.01 * 0.1 first, then Adam's first step as in test_adam_update__first_step_by_hand
    eps_scaled = 1e-7 / math.sqrt(0.001)
    want = 0.999 - 0.01 * np.array([0.5, -1, 2]) / (np.array([0.5, 1, 2]) + eps_scaled)
    np.testing.assert_allclose(b.read_state(["p"])["p"], want, rtol=1e-12)


def test_adamw_update__defaults_are_keras():
    from cnnc.ir.train_config import parse_optimizer

    args = parse_optimizer("adamw").args
    assert (args["learning_rate"], args["weight_decay"], args["epsilon"]) == (0.001, 0.004, 1e-7)
    assert parse_optimizer("adam").args["weight_decay"] == 0.0


def test_every_update_op_has_a_pinned_example():
    pinned = {name[5:].split("__")[0] for name in globals() if name.startswith("test_")}
    missing = set(op_names("update")) - pinned
    assert not missing, f"update ops without a hand-computed test: {sorted(missing)}"


def test_sgd_update__kernel_l2_gradient_by_hand():
    # l2 0.25 adds 2 * 0.25 * p to g before the step: from p = 1 with lr 0.1, g + 0.5,
    # p = 1 - 0.1 (g + 0.5) = 0.95 - 0.1 g; with weight_decay 0.5 too, decay from the same p:
    # p = 1 * 0.95 - 0.1 (g + 0.5) = 0.9 - 0.1 g.
    g = np.array([0.5, -1.0, 2.0])
    for decay, want in [(0.0, 0.95 - 0.1 * g), (0.5, 0.9 - 0.1 * g)]:
        b, step = updater("sgd_update", {"learning_rate": 0.1, "l2": 0.25,
                                         "weight_decay": decay})
        b.write_state({"p": np.ones(3)})
        step(g, 0)
        np.testing.assert_allclose(b.read_state(["p"])["p"], want, rtol=1e-12)


# ---------------------------------------------------------------- the weights' moving average
# (cnnc/ir/ema.py)


def test_ema_update__the_weights_at_step_0_then_the_momentum():
    g = single_op("ema_update", state={"avg": (2,), "w": (2,)}, attrs={"momentum": 0.75})
    b = NumpyBackend("float64")
    b.init_state(g.state, {"avg": np.array([9.0, 9.0]), "w": np.array([1.0, 2.0])})
    exe = b.compile(g, 1)
    exe.run({}, [], step=0)  # Keras: momentum 0 at the first step, so the average = w
    np.testing.assert_array_equal(b.read_state(["avg"])["avg"], [1.0, 2.0])
    b.write_state({"w": np.array([5.0, -2.0])})
    exe.run({}, [], step=1)  # 0.75 * (1, 2) + 0.25 * (5, -2)
    np.testing.assert_allclose(b.read_state(["avg"])["avg"], [2.0, 1.0], rtol=1e-15)
