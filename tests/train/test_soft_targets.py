"""Label smoothing and soft (mixed) targets in the cross-entropy losses, on both backends.

Oracles: hand-worked values, PyTorch's F.cross_entropy(label_smoothing=) and its autograd where
torch is installed, and central finite differences in float64 on the NumPy backend.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy.call import Call
from cnnc.backends.numpy.loss_impls import LOSS_IMPLS
from cnnc.errors import SpecError
from cnnc.initializers import initial_values
from cnnc.ir.train_config import parse_train_config
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph

# A network whose logits are `x @ kernel + bias`: the softmax fused into the loss
# (softmax_cross_entropy), or a sigmoid whose outputs the loss normalises (cross_entropy).
SPEC = """\
network: logits
input: [1, 1, 4]
layers:
  - flatten
  - {{dense: 3, activation: {activation}}}
"""


def _run_loss(backend: str, activation: str, x, target, *, loss: str, smoothing: float,
              dtype: str = "float32") -> dict[str, np.ndarray]:
    """Loss, gradient with respect to the loss's prediction input, and that prediction."""
    model = cnnc.compile(SPEC.format(activation=activation), backend=backend, dtype=dtype)
    # Rows of class weights for a sparse loss: the graph mixup trains (soft targets).
    mixup = 0.2 if np.asarray(target).ndim == 2 and loss.startswith("sparse") else 0.0
    config = parse_train_config({"loss": loss, "label_smoothing": smoothing,
                                 "augment": {"mixup": mixup}})
    assert config.soft_targets == bool(mixup)
    graph = training_graph(model.spec_graph, config, optimizer=False)
    loss_node = graph.node(names.LOSS)
    grad = next(n.name for n in graph.nodes if n.op == f"{loss_node.op}_grad")
    pred = loss_node.inputs[0]
    model.backend.init_state(graph.state, initial_values(graph.state, 0, dtype))
    exe = model.backend.compile(graph, len(x), keep=[grad, pred])
    feeds = {graph.inputs[0]: np.asarray(x, dtype), names.TARGET: np.asarray(target)}
    out = exe.run(feeds, [names.LOSS, grad, pred])
    return {"node": loss_node, "op": loss_node.op, "attrs": loss_node.attrs,
            "loss": float(out[names.LOSS]),
            "grad": np.asarray(out[grad], np.float64), "pred": np.asarray(out[pred], np.float64)}


def _inputs(n: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, 1, 4)).astype(np.float32), rng.integers(0, 3, n)


def _smoothed(labels: np.ndarray, classes: int, e: float) -> np.ndarray:
    return (1 - e) * np.eye(classes)[labels] + e / classes


def test_label_smoothing_is_a_loss_attribute_carried_to_its_gradient():
    x, y = _inputs()
    out = _run_loss("numpy", "softmax", x, y.astype(np.int32),
                    loss="sparse_categorical_crossentropy", smoothing=0.1)
    assert out["op"] == "softmax_cross_entropy" and out["attrs"]["label_smoothing"] == 0.1


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_smoothed_softmax_cross_entropy_by_hand(backend, loss):
    """Logits (ln 3, 0, 0) are probabilities (3/5, 1/5, 1/5); with e = 0.3 the target of class
    0 is (0.8, 0.1, 0.1): loss -(0.8 ln 0.6 + 0.2 ln 0.2), gradient p - t = (-0.2, 0.1, 0.1)."""
    model_x = np.zeros((1, 1, 1, 4), np.float32)
    target = np.array([0], np.int32) if loss.startswith("sparse") else np.eye(3)[[0]]
    # Weights zero and bias (ln 3, 0, 0): the logits are the bias.
    out = _run_with_bias(backend, "softmax", model_x, target, loss, 0.3, [math.log(3), 0, 0])
    want = -(0.8 * math.log(0.6) + 0.2 * math.log(0.2))
    assert out["loss"] == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(out["grad"], [[-0.2, 0.1, 0.1]], atol=1e-6)


def _run_with_bias(backend, activation, x, target, loss, smoothing, bias):
    model = cnnc.compile(SPEC.format(activation=activation), backend=backend)
    weights = model.get_weights()
    weights = {k: np.zeros_like(v) for k, v in weights.items()}
    bias_name = next(k for k in weights if k.endswith("bias"))
    weights[bias_name] = np.asarray(bias, np.float32)
    config = parse_train_config({"loss": loss, "label_smoothing": smoothing})
    graph = training_graph(model.spec_graph, config, optimizer=False)
    loss_node = graph.node(names.LOSS)
    grad = next(n.name for n in graph.nodes if n.op == f"{loss_node.op}_grad")
    model.backend.init_state(graph.state, initial_values(graph.state, 0))
    model.set_weights(weights)
    exe = model.backend.compile(graph, len(x), keep=[grad])
    out = exe.run({graph.inputs[0]: x, names.TARGET: target}, [names.LOSS, grad])
    return {"loss": float(out[names.LOSS]), "grad": np.asarray(out[grad], np.float64)}


def test_smoothed_cross_entropy_on_probabilities_by_hand(backend):
    """cross_entropy normalises sigmoid outputs: biases chosen so that the sigmoids are
    (3/4, 1/8, 1/8) sum to 1, q = (0.75, 0.125, 0.125); e = 0.3, class 1: the target is
    (0.1, 0.8, 0.1) and the loss -(0.1 ln 0.75 + 0.8 ln 0.125 + 0.1 ln 0.125)."""
    logit = lambda p: math.log(p / (1 - p))
    out = _run_with_bias(backend, "sigmoid", np.zeros((1, 1, 1, 4), np.float32),
                         np.array([1], np.int32), "sparse_categorical_crossentropy", 0.3,
                         [logit(0.75), logit(0.125), logit(0.125)])
    want = -(0.1 * math.log(0.75) + 0.9 * math.log(0.125))
    assert out["loss"] == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.45])
@pytest.mark.parametrize("soft", [False, True])
def test_smoothed_loss_and_gradient_match_pytorch(backend, smoothing, soft):
    torch = pytest.importorskip("torch")
    x, y = _inputs(6, seed=int(smoothing * 100))
    if soft:  # mixup's targets: two classes mixed
        lam = np.linspace(0.1, 0.9, len(y))[:, None]
        target = (lam * np.eye(3)[y] + (1 - lam) * np.eye(3)[(y + 1) % 3]).astype(np.float32)
    else:
        target = y.astype(np.int32)
    out = _run_loss(backend, "softmax", x, target, loss="sparse_categorical_crossentropy",
                    smoothing=smoothing)
    assert out["op"] == "softmax_cross_entropy"
    logits = torch.tensor(out["pred"], dtype=torch.float64, requires_grad=True)
    t = torch.tensor(target, dtype=torch.float64) if soft else torch.tensor(y)
    ref = torch.nn.functional.cross_entropy(logits, t, label_smoothing=smoothing)
    ref.backward()
    assert out["loss"] == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(out["grad"], logits.grad.numpy(), atol=1e-6)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_smoothed_gradient_matches_finite_differences_in_float64(activation):
    x, y = _inputs(4, seed=2)
    e, h = 0.2, 1e-6
    out = _run_loss("numpy", activation, x, y.astype(np.int32),
                    loss="sparse_categorical_crossentropy", smoothing=e, dtype="float64")
    pred, labels = out["pred"], y.astype(np.int32)
    call = Call(out["node"], np.dtype(np.float64))
    f = LOSS_IMPLS[out["op"]]
    numeric = np.zeros_like(pred)
    for i in np.ndindex(pred.shape):
        up, down = pred.copy(), pred.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (f(call, up, labels) - f(call, down, labels)) / (2 * h)
    assert out["op"] == ("softmax_cross_entropy" if activation == "softmax" else "cross_entropy")
    np.testing.assert_allclose(out["grad"], numeric, rtol=1e-6, atol=1e-9)


def test_mixed_targets_give_the_mixture_of_the_two_losses(backend):
    """mixup's loss: with target lam * onehot(a) + (1 - lam) * onehot(b) the loss is
    lam * CE(a) + (1 - lam) * CE(b), computed here from the model's own probabilities."""
    x, a = _inputs(6, seed=4)
    b = (a + 1 + np.arange(6) % 2) % 3
    lam = np.array([0.2, 0.5, 0.7, 0.9, 1.0, 0.35])
    target = (lam[:, None] * np.eye(3)[a] + (1 - lam[:, None]) * np.eye(3)[b]).astype(np.float32)
    out = _run_loss(backend, "softmax", x, target, loss="sparse_categorical_crossentropy",
                    smoothing=0.0)
    logits = out["pred"]
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    rows = np.arange(6)
    want = np.mean(lam * -log_p[rows, a] + (1 - lam) * -log_p[rows, b])
    assert out["loss"] == pytest.approx(want, rel=1e-5)


def test_label_smoothing_settings_are_checked():
    assert parse_train_config({"label_smoothing": 0.1}).label_smoothing == 0.1
    with pytest.raises(SpecError, match="train.label_smoothing"):
        parse_train_config({"label_smoothing": 1.0})
    with pytest.raises(SpecError, match="cross-entropy"):
        parse_train_config({"label_smoothing": 0.1, "loss": "mse"})
