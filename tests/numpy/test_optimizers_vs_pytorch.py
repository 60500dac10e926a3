"""Update ops over several steps against torch.optim on the same parameters and gradients.

Where cnnc follows Keras and Keras differs from PyTorch, the reference is PyTorch's optimizer
composed with the documented difference, written out here:
- SGD with momentum keeps Keras' velocity v = momentum*v - lr*g; PyTorch keeps b = momentum*b + g
  and steps p -= lr*b. With a constant rate v = -lr*b, so the two agree (with or without
  Nesterov: Keras' p += momentum*v - lr*g is PyTorch's p -= lr*(g + momentum*b)).
- Weight decay is decoupled (Keras 3, Loshchilov & Hutter as torch.optim.AdamW applies it):
  p *= 1 - lr*weight_decay before the step. PyTorch's SGD(weight_decay=) adds weight_decay*p to
  the gradient instead: the same without momentum, not with it, so with momentum the reference
  is SGD without weight decay after p.mul_(1 - lr*weight_decay).
- Adam adds epsilon to sqrt(v) before the bias correction (Keras), PyTorch after it; with an
  epsilon of 1e-12 the difference is far below the tolerance.
Skipped where torch is not installed; tests/numpy/test_update_semantics.py has hand-computed
one-step cases of each that run everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.numpy import NumpyBackend
from cnnc.ir.train_config import parse_optimizer
from cnnc.passes.optimizer import slot_kinds
from cnnc.testing.nets import single_op

torch = pytest.importorskip("torch")

P0 = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -0.75]])
RNG = np.random.default_rng(21)
GRADS = [RNG.normal(size=P0.shape) for _ in range(6)]


def run_cnnc(optimizer: dict, lrs: list[float] | None = None, grads=GRADS) -> np.ndarray:
    """P0 after one update per gradient of GRADS, float64, with a rate per step if given."""
    config = parse_optimizer(optimizer)
    slots = slot_kinds(config)
    g = single_op(f"{config.name}_update",
                  state={"p": P0.shape, "g": P0.shape, **{s: P0.shape for s in slots}},
                  attrs=dict(config.args))
    backend = NumpyBackend("float64")
    backend.init_state(g.state, {s.name: np.zeros(s.shape) for s in g.state})
    backend.write_state({"p": P0})
    exe = backend.compile(g, 1)
    for t, grad in enumerate(grads):
        backend.write_state({"g": grad})
        exe.run({}, [], step=t, learning_rate=None if lrs is None else lrs[t])
    return backend.read_state(["p"])["p"]


def run_torch(make, decoupled: float = 0.0, lrs: list[float] | None = None) -> np.ndarray:
    """The same steps with torch.optim; `decoupled`: p *= 1 - lr*decoupled before each."""
    p = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    opt = make([p])
    for t, grad in enumerate(GRADS):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[t]
        with torch.no_grad():
            p.mul_(1 - opt.param_groups[0]["lr"] * decoupled)
        p.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
    return p.detach().numpy()


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_sgd_matches_torch(momentum, nesterov):
    if nesterov and not momentum:
        pytest.skip("Nesterov needs momentum (PyTorch refuses it without)")
    got = run_cnnc({"name": "sgd", "learning_rate": 0.05, "momentum": momentum,
                    "nesterov": nesterov})
    want = run_torch(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=momentum,
                                                nesterov=nesterov))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_sgd_weight_decay_without_momentum_is_torch_sgd_weight_decay():
    got = run_cnnc({"name": "sgd", "learning_rate": 0.1, "weight_decay": 0.3})
    want = run_torch(lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.3))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_weight_decay_with_momentum_is_decoupled(nesterov):
    args = {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": nesterov,
            "weight_decay": 0.3}
    got = run_cnnc(args)
    want = run_torch(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=nesterov),
                     decoupled=0.3)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # and it is not PyTorch's coupled weight decay, which differs once momentum carries it
    coupled = run_torch(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=nesterov,
                                                   weight_decay=0.3))
    assert np.abs(got - coupled).max() > 1e-4


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_adamw_matches_torch_adamw(name):
    args = {"name": name, "learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99,
            "epsilon": 1e-12, "weight_decay": 0.5}
    want = run_torch(lambda ps: torch.optim.AdamW(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-12,
                                                  weight_decay=0.5))
    np.testing.assert_allclose(run_cnnc(args), want, rtol=1e-9)


def test_adamw_under_a_changing_rate_matches_torch():
    lrs = [0.01, 0.03, 0.02, 0.005, 0.001, 0.04]
    args = {"name": "adamw", "learning_rate": 0.01, "epsilon": 1e-12, "weight_decay": 0.1}
    want = run_torch(lambda ps: torch.optim.AdamW(ps, lr=0.01, eps=1e-12, weight_decay=0.1),
                     lrs=lrs)
    np.testing.assert_allclose(run_cnnc(args, lrs), want, rtol=1e-9)


def test_nadam_weight_decay_is_decoupled_before_the_step():
    # No PyTorch optimizer is Keras' Nadam; check the decay against cnnc's own Nadam instead:
    # with the gradient zero, m and v stay zero and only the decay moves p.
    got = run_cnnc({"name": "nadam", "learning_rate": 0.1, "weight_decay": 0.5},
                   grads=[np.zeros_like(P0)] * 3)
    np.testing.assert_allclose(got, P0 * 0.95 ** 3, rtol=1e-12)


def _run_update(op: str, attrs: dict, slots: tuple[str, ...]) -> np.ndarray:
    g = single_op(op, state={"p": P0.shape, "g": P0.shape, **{s: P0.shape for s in slots}},
                  attrs=attrs)
    backend = NumpyBackend("float64")
    backend.init_state(g.state, {s.name: np.zeros(s.shape) for s in g.state})
    backend.write_state({"p": P0})
    exe = backend.compile(g, 1)
    for t, grad in enumerate(GRADS):
        backend.write_state({"g": grad})
        exe.run({}, [], step=t)
    return backend.read_state(["p"])["p"]


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_kernel_l2_gradient_is_torch_sgd_coupled_weight_decay(momentum, nesterov):
    # An L2 penalty l2 * sum(p^2) adds 2 * l2 * p to the gradient: PyTorch's (coupled)
    # SGD weight_decay of 2 * l2, momentum and all.
    got = _run_update("sgd_update", {"learning_rate": 0.1, "momentum": momentum,
                                     "nesterov": nesterov, "l2": 0.15},
                      ("velocity",) if momentum else ())
    want = run_torch(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=momentum,
                                                nesterov=nesterov, weight_decay=0.3))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_kernel_l2_gradient_is_torch_adam_coupled_weight_decay():
    got = _run_update("adam_update", {"learning_rate": 0.02, "epsilon": 1e-12, "l2": 0.25},
                      ("m", "v"))
    want = run_torch(lambda ps: torch.optim.Adam(ps, lr=0.02, eps=1e-12, weight_decay=0.5))
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_kernel_l2_then_decoupled_decay_is_torch_adam_l2_after_decay():
    # Both: the L2 gradient from p before the decay, then p *= 1 - lr*wd, then Adam's step.
    got = _run_update("adamw_update", {"learning_rate": 0.02, "epsilon": 1e-12, "l2": 0.25,
                                       "weight_decay": 0.1}, ("m", "v"))
    p = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.02, eps=1e-12)
    for grad in GRADS:
        g = torch.tensor(grad, dtype=torch.float64) + 0.5 * p.detach()
        with torch.no_grad():
            p.mul_(1 - 0.02 * 0.1)
        p.grad = g
        opt.step()
    np.testing.assert_allclose(got, p.detach().numpy(), rtol=1e-9)
