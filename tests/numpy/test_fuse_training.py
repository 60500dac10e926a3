"""The activation after a batch norm fused into batchnorm_train in training graphs
(passes/fuse_training.py): which graphs fuse, and that a training step computes the same loss,
gradients and updates with and without the fusion."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.numpy import NumpyBackend
from cnnc.initializers import initial_values
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.fuse_training import fuse_batchnorm_activation
from cnnc.passes.pipeline import run_pipeline, training_graph, training_pipeline
from cnnc.testing.nets import chain, run

CONFIG = TrainConfig(loss="mean_squared_error")


def _unfused(graph):
    passes = [p for p in training_pipeline(loss=CONFIG.loss, optimizer=CONFIG.optimizer, seed=0)
              if p.name != "fuse_batchnorm_activation"]
    return run_pipeline(graph, passes, check=True)


def test_batchnorm_and_relu_train_as_one_node():
    g = chain((6, 6, 2), ("conv2d", 3, 3, {"use_bias": False}), ("batchnorm",),
              ("activation", "relu"), ("flatten",), ("dense", 2))
    t = training_graph(g, CONFIG, check=True)
    fused = t.node("activation")
    assert fused.op == "batchnorm_train" and fused.attrs["activation"] == "relu"
    assert "batch_normalization" not in t.node_map
    assert not any(n.op == "activation" for n in t.nodes)


@pytest.mark.parametrize("layers", [
    [("batchnorm",), ("activation", "softmax")],  # spans a row: not element-wise
    [("batchnorm",), ("dropout", 0.5), ("activation", "relu")],
])
def test_no_fusion_without_an_elementwise_activation_right_after(layers):
    g = chain((6,), ("dense", 4), *layers)
    t = _unfused(g)
    assert fuse_batchnorm_activation(t) == t


def test_no_fusion_when_the_normalised_value_is_read_elsewhere():
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    g = lower("net", [L("input", [(5, 5, 2)], name="x"), L("conv2d", [2, 3], name="c"),
                      L("batchnorm", name="bn", inputs=["c"]),
                      L("activation", ["tanh"], name="t", inputs=["bn"]),
                      L("add", name="s", inputs=["bn", "t"])])
    t = _unfused(g)
    assert fuse_batchnorm_activation(t) == t


@pytest.mark.parametrize("act", ["relu", "elu", "sigmoid", "tanh", "leaky_relu"])
def test_fused_training_step_equals_unfused(act, rng):
    g = chain((6, 5, 3), ("conv2d", 4, 3, {"padding": "same", "use_bias": False}),
              ("batchnorm", {"center": act != "elu"}), ("activation", act), ("flatten",),
              ("dense", 5), ("batchnorm", {"scale": act != "tanh"}), ("activation", act),
              ("dense", 2))
    fused, unfused = training_graph(g, CONFIG, check=True), _unfused(g)
    assert sum(n.op == "batchnorm_train" and n.attrs["activation"] == act
               for n in fused.nodes) == 2
    feeds = {"input_layer": rng.normal(size=(4, 6, 5, 3)), names.TARGET: rng.normal(size=(4, 2))}
    results = []
    for t in (fused, unfused):
        backend = NumpyBackend("float64")
        fetch = [n.name for n in t.nodes if n.shape is not None and n.name.startswith("grad/")]
        out = run(t, feeds, initial_values(t.state, 3, "float64"), [names.LOSS, *fetch],
                  backend=backend)
        results.append((out, backend.read_state([s.name for s in g.state])))
    (a, state_a), (b, state_b) = results
    assert len(set(a) & set(b)) > 10
    for k in set(a) & set(b):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14, err_msg=k)
    for k in state_b:  # the updates wrote the same weights and moving statistics
        assert not np.array_equal(state_b[k], initial_values(g.state, 3, "float64")[k]), k
        np.testing.assert_allclose(state_a[k], state_b[k], rtol=1e-12, atol=1e-14, err_msg=k)


def _residual_net(act: str, extra=None):
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    return lower("net", [
        L("input", [(5, 4, 3)], name="x"),
        L("conv2d", [3, 3], {"padding": "same", "use_bias": False}, name="c"),
        L("batchnorm", name="bn"),
        L("add", name="s", inputs=["x", "bn"]),
        *([L("activation", [act], name="y")] if act else []),
        *(extra or []),
        L("flatten", name="f"), L("dense", [2], name="d"),
    ])


@pytest.mark.parametrize("act", ["relu", "tanh", None])
def test_residual_block_trains_as_one_node_with_the_same_step(act, rng):
    """batchnorm_train -> add -> activation becomes one batchnorm_train_add; the loss, every
    gradient and every update equal the unfused graph's."""
    g = _residual_net(act)
    fused, unfused = training_graph(g, CONFIG, check=True), _unfused(g)
    node = fused.node("y" if act else "s")
    assert node.op == "batchnorm_train_add" and node.inputs[:3] == ("c", "bn/stats", "x")
    assert node.attrs["activation"] == (act or "linear")
    assert "bn" not in fused.node_map and ("s" not in fused.node_map) == bool(act)
    feeds = {"x": rng.normal(size=(4, 5, 4, 3)), names.TARGET: rng.normal(size=(4, 2))}
    results = []
    for t in (fused, unfused):
        backend = NumpyBackend("float64")
        fetch = [n.name for n in t.nodes if n.shape is not None and n.name.startswith("grad/")]
        out = run(t, feeds, initial_values(t.state, 3, "float64"), [names.LOSS, *fetch],
                  backend=backend)
        results.append((out, backend.read_state([s.name for s in g.state])))
    (a, state_a), (b, state_b) = results
    assert names.LOSS in a and len(set(a) & set(b)) > 5
    for k in set(a) & set(b):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14, err_msg=k)
    for k in state_b:
        np.testing.assert_allclose(state_a[k], state_b[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_no_residual_fusion_when_the_sum_or_the_normalised_value_is_read_elsewhere():
    from cnnc.frontend.lower import LayerDecl as L

    # a relu with parameters: its gradient reads its input, the sum: the add fuses, the relu
    # stays
    g = _residual_net(None, [L("relu", keywords={"max_value": 6.0}, name="r")])
    t = training_graph(g, CONFIG, check=True)
    assert t.node("s").op == "batchnorm_train_add" and t.node("r").op == "activation"
    assert t.node("r").attrs["max_value"] == 6.0
    # the normalised value read by a second layer: nothing fuses
    g = _residual_net("relu", [L("add", name="again", inputs=["y", "bn"])])
    t = _unfused(g)
    assert fuse_batchnorm_activation(t) == t
