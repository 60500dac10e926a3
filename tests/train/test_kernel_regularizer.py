"""kernel_regularizer (Keras' L2 on conv2d and dense kernels): its spellings and errors, the
penalty in the loss training reports, and its gradient in the step, on both backends."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.errors import CnncError
from cnnc.frontend.writers import to_dsl
from cnnc.passes import names

SPEC = """\
network reg
input 5x5x2
conv2d 3 3 same {conv}
flatten
dense 4 softmax {dense}
"""
L2_CONV, L2_DENSE, LR = 0.05, 0.2, 0.1


def _spec(conv: str = "", dense: str = "") -> str:
    return SPEC.format(conv=conv, dense=dense)


def _graph_attr(text: str) -> float:
    return cnnc.load_spec(text).node("conv2d").attrs["kernel_regularizer"]


@pytest.mark.parametrize("written,factor", [
    ("kernel_regularizer=1e-4", 1e-4),
    ("kernel_regularizer=l2", 0.01),  # Keras' 'l2' string: L2(l2=0.01)
    ("kernel_regularizer=(l2, 0.003)", 0.003),
    ("kernel_regularizer=0", 0.0),
    ("", 0.0),
])
def test_dsl_spellings(written, factor):
    assert _graph_attr(_spec(written)) == factor


def test_yaml_spellings():
    for value, factor in [("{l2: 0.002}", 0.002), ("[l2, 0.5]", 0.5), ("0.25", 0.25),
                          ("null", 0.0)]:
        text = ("network: r\ninput: [5, 5, 2]\nlayers:\n"
                f"  - {{conv2d: [3, 3], kernel_regularizer: {value}}}\n")
        assert _graph_attr(text) == factor, value


@pytest.mark.parametrize("written,message", [
    ("kernel_regularizer=l1", r"Expected an L2 regularizer.*Received kernel_regularizer='l1'"),
    ("kernel_regularizer=-1.0", r"finite number >= 0\. Received kernel_regularizer=-1"),
    ("kernel_regularizer=(l2, x)", r"Received kernel_regularizer=\('l2', 'x'\)"),
])
def test_bad_values_name_the_layer_and_argument(written, message):
    with pytest.raises(CnncError, match=message) as err:
        cnnc.load_spec(_spec(written))
    assert "conv2d" in str(err.value)


def test_the_dsl_writer_round_trips_it():
    graph = cnnc.load_spec(_spec("kernel_regularizer=(l2, 0.003)"))
    assert cnnc.load_spec(to_dsl(graph)).node("conv2d").attrs["kernel_regularizer"] == 0.003


def test_the_training_graph_adds_one_penalty_per_kernel():
    model = cnnc.compile(_spec(f"kernel_regularizer={L2_CONV}", f"kernel_regularizer={L2_DENSE}"),
                         backend="numpy", optimizer="adam")
    g = model.training_graph()
    chain = [n for n in g.nodes if n.op == "l2_penalty"]
    assert [(n.inputs, n.attrs["l2"]) for n in chain] == [
        ((names.DATA_LOSS, "conv2d/kernel"), L2_CONV),
        ((names.penalty("conv2d/kernel"), "dense/kernel"), L2_DENSE)]
    assert chain[-1].name == names.LOSS == g.outputs[0]
    l2 = {n.inputs[0]: n.attrs["l2"] for n in g.nodes if n.op == "adam_update"}
    assert l2 == {"conv2d/kernel": L2_CONV, "dense/kernel": L2_DENSE, "conv2d/bias": 0.0,
                  "dense/bias": 0.0}
    # Without updates (gradient checks), neither the penalty nor the renamed loss is there.
    from cnnc.passes.pipeline import training_graph
    plain = training_graph(model.spec_graph, model.train_config, optimizer=False)
    assert not any(n.op == "l2_penalty" for n in plain.nodes)


def _step(backend: str, conv: str, dense: str, queued: bool):
    model = cnnc.compile(_spec(conv, dense), backend=backend, seed=4,
                         optimizer={"name": "sgd", "learning_rate": LR})
    rng = np.random.default_rng(1)
    start = model.get_weights()
    start = {k: (v + rng.normal(0, 0.3, v.shape)).astype(np.float32) for k, v in start.items()}
    model.set_weights(start)
    x = rng.random((3, 5, 5, 2), dtype=np.float32)
    y = np.array([0, 3, 1], np.int32)
    if queued:  # what the training loop runs on the OpenCL backend
        model.queue_train_step(x, y)
        (figures,) = model.read_queued_steps()
        loss = figures.loss
    else:
        loss = model.train_step(x, y)
    return start, loss, model.get_weights()


@pytest.mark.parametrize("queued", [False, True])
def test_penalty_in_the_loss_and_its_gradient_in_the_step(backend, queued):
    start, loss, plain = _step(backend, "", "", queued)
    _, reg_loss, reg = _step(backend, f"kernel_regularizer={L2_CONV}",
                             f"kernel_regularizer={L2_DENSE}", queued)
    penalty = (L2_CONV * np.sum(start["conv2d/kernel"].astype(np.float64) ** 2)
               + L2_DENSE * np.sum(start["dense/kernel"].astype(np.float64) ** 2))
    assert reg_loss - loss == pytest.approx(penalty, rel=1e-5)
    for name, l2 in [("conv2d/kernel", L2_CONV), ("dense/kernel", L2_DENSE)]:
        # SGD: p - lr (g + 2 l2 p)  versus  p - lr g
        np.testing.assert_allclose(reg[name] - plain[name], -LR * 2 * l2 * start[name],
                                   rtol=1e-4, atol=1e-6, err_msg=name)
    for name in ("conv2d/bias", "dense/bias"):
        np.testing.assert_array_equal(reg[name], plain[name], err_msg=name)
