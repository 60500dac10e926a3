"""Gradient clipping by global norm (the optimizer's `global_clipnorm`; cnnc/ir/clipping.py,
cnnc/passes/clip_gradients.py): a hand-worked step, PyTorch's clip_grad_norm_ as the oracle
(skipped without torch), the OpenCL step against NumPy, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.errors import SpecError


def _spec(optimizer: str, body: str = "input 2\ndense 1 use_bias=false") -> str:
    return f"{body}\ntrain {{ loss mse\n optimizer {optimizer} }}"


def _after_one_step(optimizer: str, backend: str = "numpy", dtype: str = "float64"):
    options = {"dtype": dtype} if backend == "numpy" else {}
    model = cnnc.compile(_spec(optimizer), backend=backend, **options)
    model.set_weights({"dense/kernel": np.array([[1.0], [1.0]])})
    loss = model.train_step(np.array([[3.0, 4.0]]), np.array([[0.0]]))
    return loss, model.get_weights()["dense/kernel"].ravel()


def test_hand_worked_step_is_clipped_to_the_norm():
    # w = (1, 1), x = (3, 4), y = 0: prediction 7, loss 49, dloss/dw = 2 * 7 * x = (42, 56),
    # norm 70. Clipped to 7: coefficient 7 / (70 + 1e-6), the gradient (4.2, 5.6) almost.
    loss, w = _after_one_step("sgd learning_rate=1.0 global_clipnorm=7.0")
    assert loss == 49.0
    c = 7.0 / (70.0 + 1e-6)
    np.testing.assert_allclose(w, [1 - 42 * c, 1 - 56 * c], rtol=1e-14)
    # A bound above the norm leaves the gradient as it is (coefficient 1, not 100 / 70).
    _, w = _after_one_step("sgd learning_rate=1.0 global_clipnorm=100.0")
    np.testing.assert_array_equal(w, [1 - 42, 1 - 56])


def test_opencl_step_matches_numpy(opencl_status):
    if not opencl_status[0]:
        pytest.skip(opencl_status[1])
    _, want = _after_one_step("sgd learning_rate=1.0 global_clipnorm=7.0")
    _, got = _after_one_step("sgd learning_rate=1.0 global_clipnorm=7.0", backend="opencl")
    np.testing.assert_allclose(got, want, rtol=1e-6)


NET = "input 4x4x2\nconv2d 3 3 same relu\nflatten\ndense 5 tanh\ndense 3"


@pytest.mark.parametrize("max_norm", [0.01, 0.3, 50.0])
def test_matches_pytorch_clip_grad_norm(max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 4, 4, 2))
    y = rng.integers(0, 3, 6)

    def step(extra: str) -> tuple[dict, dict]:
        spec = f"{NET}\ntrain {{ optimizer sgd learning_rate=1.0{extra} }}"
        model = cnnc.compile(spec, backend="numpy", dtype="float64", seed=2)
        before = model.get_weights()
        model.train_step(x, y)
        return before, model.get_weights()

    before, plain = step("")
    grads = {k: before[k] - plain[k] for k in before}  # lr 1, no momentum: the gradients
    _, clipped = step(f" global_clipnorm={max_norm}")
    params = []
    for k in sorted(grads):
        p = torch.zeros(grads[k].shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(grads[k])
        params.append(p)
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    for k, p in zip(sorted(grads), params, strict=True):
        np.testing.assert_allclose(before[k] - clipped[k], p.grad.numpy(), rtol=1e-9,
                                   atol=1e-15, err_msg=k)


def test_the_option_is_checked_and_reaches_the_graph():
    with pytest.raises(SpecError, match=r"strictly positive number. Received global_clipnorm=0"):
        cnnc.load_spec(_spec("adam global_clipnorm=0"))
    graph = cnnc.compile(_spec("adam global_clipnorm=2.5"), backend="numpy").training_graph()
    ops = [n.op for n in graph.nodes]
    assert ops.count("clip_coefficient") == 1 and "scale_gradient" in ops
    update = next(n for n in graph.nodes if n.op == "adam_update")
    assert update.inputs[1] == "grad/dense/kernel/clipped"
    assert "global_clipnorm" not in update.attrs
    plain = cnnc.compile(_spec("adam"), backend="numpy").training_graph()
    assert "clip_coefficient" not in [n.op for n in plain.nodes]
    assert cnnc.load_spec(_spec("adam")).train.optimizer == \
        cnnc.load_spec(_spec("adam learning_rate=0.001")).train.optimizer
