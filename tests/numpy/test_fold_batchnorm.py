"""Batch norm folded into the convolution or dense layer before it (passes/fold_batchnorm.py):
which graphs fold, and that the folded graph computes what the unfolded one does, with batch
norm state far from its initial values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import cnnc
from cnnc.initializers import initial_values
from cnnc.passes.fold_batchnorm import fold_batchnorm
from cnnc.passes.pipeline import inference_graph
from cnnc.testing.graphgen import graphs
from cnnc.testing.nets import chain, run


def random_state(graph, seed: int, dtype: str = "float64") -> dict[str, np.ndarray]:
    """Initial weights, with every batch norm's gamma, beta and moving statistics random (the
    initial ones, 1, 0, 0 and 1, would hide a wrong fold)."""
    rng = np.random.default_rng(seed)
    state = initial_values(graph.state, seed, dtype)
    for name, value in state.items():
        suffix = name.rsplit("/", 1)[-1]
        if suffix in ("gamma", "moving_variance"):
            state[name] = rng.uniform(0.3, 2.0, value.shape).astype(dtype)
        elif suffix in ("beta", "moving_mean", "bias"):
            state[name] = rng.normal(0, 0.5, value.shape).astype(dtype)
    return state


def _assert_same_outputs(graph, state, feeds, rtol=1e-10):
    folded = inference_graph(graph, check=True)
    before, after = run(graph, feeds, state), run(folded, feeds, state)
    for name in graph.outputs:
        np.testing.assert_allclose(after[name], before[name], rtol=rtol, atol=rtol, err_msg=name)
    return folded


def test_conv_batchnorm_relu_is_one_node():
    g = chain((6, 6, 2), ("conv2d", 3, 3, {"use_bias": False}), ("batchnorm",),
              ("activation", "relu"), ("flatten",))
    out = inference_graph(g, check=True)
    assert [n.op for n in out.nodes] == ["input", "conv2d_bn", "flatten"]
    fused = out.node("activation")
    assert fused.attrs["activation"] == "relu" and fused.attrs["epsilon"] == 1e-3
    assert fused.params == ("conv2d/kernel", "batch_normalization/gamma",
                            "batch_normalization/beta", "batch_normalization/moving_mean",
                            "batch_normalization/moving_variance")


@pytest.mark.parametrize(("relu", "fused"), [
    ({}, "relu"), ({"max_value": 6.0}, "relu6"), ({"negative_slope": 0.2}, "leaky_relu"),
    ({"negative_slope": 0.1}, None), ({"threshold": 0.5}, None), ({"max_value": 5.0}, None),
])
def test_a_relu_layer_fuses_only_as_an_activation_it_equals(relu, fused):
    g = chain((6, 6, 2), ("conv2d", 3, 3), ("batchnorm",), ("relu", relu))
    ops = [n.op for n in inference_graph(g, check=True).nodes]
    if fused is None:
        assert ops == ["input", "conv2d_bn", "activation"]
    else:
        assert ops == ["input", "conv2d_bn"]
        assert inference_graph(g).node("re_lu").attrs["activation"] == fused


@pytest.mark.parametrize("layers", [
    # an activation before the batch norm: conv2d -> relu -> batchnorm is not a linear map
    [("conv2d", 3, 3, {"activation": "relu"}), ("batchnorm",)],
    [("dense", 3, {"activation": "tanh"}), ("batchnorm",)],
    [("maxpool2d", 2), ("batchnorm",)],
])
def test_no_fold_without_a_linear_layer_before(layers):
    g = chain((6, 6, 2), *layers)
    assert fold_batchnorm(g) == g


def test_no_fold_when_the_layer_output_is_read_elsewhere():
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    g = lower("net", [L("input", [(5, 5, 2)], name="x"), L("conv2d", [3, 3], name="c"),
                      L("batchnorm", name="bn", inputs=["c"]),
                      L("add", name="s", inputs=["c", "bn"])])
    assert fold_batchnorm(g) == g
    g = lower("net", [L("input", [(5, 5, 2)], name="x"), L("conv2d", [3, 3], name="c"),
                      L("batchnorm", name="bn", inputs=["c"])], outputs=["c", "bn"])
    assert fold_batchnorm(g) == g


NETS = {
    "conv_bn_relu": [("conv2d", 4, 3, {"padding": "same", "use_bias": False}), ("batchnorm",),
                     ("activation", "relu")],
    "conv_bias_bn": [("conv2d", 4, 3, {"strides": 2}), ("batchnorm",)],
    "conv_bn_no_scale": [("conv2d", 5, 2), ("batchnorm", {"scale": False}),
                         ("activation", "elu")],
    "conv_bn_no_center": [("conv2d", 5, 3, {"use_bias": False}),
                          ("batchnorm", {"center": False, "epsilon": 0.1})],
    "conv_bn_neither": [("conv2d", 3, 1), ("batchnorm", {"center": False, "scale": False})],
    "grouped_conv_bn": [("conv2d", 6, 3, {"groups": 2, "padding": "same"}), ("batchnorm",),
                        ("activation", "tanh")],
    "dilated_conv_bn_softmax": [("conv2d", 4, 3, {"dilation_rate": 2, "padding": "same"}),
                                ("batchnorm",), ("activation", "softmax")],
    "depthwise_bn_relu6": [("depthwise_conv2d", 3, {"padding": "same", "use_bias": False}),
                           ("batchnorm",), ("activation", "relu6")],
    "depthwise_multiplier_bn": [("depthwise_conv2d", 2, {"depth_multiplier": 3}),
                                ("batchnorm", {"center": False}), ("activation", "elu")],
    "conv_bn_relu6_layer": [("conv2d", 4, 3, {"use_bias": False}), ("batchnorm",),
                            ("relu", {"max_value": 6.0})],
    "conv_bn_leaky_layer": [("conv2d", 4, 3), ("batchnorm",), ("leaky_relu", 0.2)],
    "conv_bn_shifted_relu_layer": [("conv2d", 4, 3), ("batchnorm",), ("relu", {"threshold": 0.1})],
    "dense_bn_relu": [("flatten",), ("dense", 7, {"use_bias": False}), ("batchnorm",),
                      ("activation", "relu"), ("dense", 3)],
    "dense_bn_sigmoid": [("flatten",), ("dense", 5), ("batchnorm", {"center": False}),
                         ("activation", "sigmoid")],
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_folded_equals_unfolded(name, rng):
    g = chain((7, 6, 4), *NETS[name])
    folded = _assert_same_outputs(g, random_state(g, 3),
                                  {"input_layer": rng.normal(size=(3, 7, 6, 4))})
    assert "batchnorm" not in {n.op for n in folded.nodes}


@settings(max_examples=30, deadline=None)
@given(graphs(max_blocks=5))
def test_folding_random_graphs_keeps_the_outputs(graph):
    rng = np.random.default_rng(4)
    feeds = {n: rng.normal(size=(2, *graph.node(n).shape[1:])) for n in graph.inputs}
    _assert_same_outputs(graph, random_state(graph, 5), feeds)


def _model_state(model):
    return model.backend.read_state([s.name for s in model.spec_graph.state])


SPEC = {
    "network": "folded", "input": [8, 8, 2],
    "layers": [
        {"conv2d": [4, 3], "padding": "same", "use_bias": False}, "batchnorm",
        {"activation": "relu"}, {"maxpool2d": 2}, "flatten",
        {"dense": 6}, {"batchnorm": None, "scale": False}, {"activation": "relu"},
        {"dense": 3, "activation": "softmax"},
    ],
}


def test_numpy_model_folds_the_live_state_after_training_and_loading(rng):
    """predict (the folded inference graph) against the unfolded graph run on the model's
    state, after training steps changed the moving statistics and after set_weights."""
    model = cnnc.compile(SPEC, backend="numpy", seed=2, dtype="float64")
    # the folded convolution, inside the node that pools it as it stores (fuse_conv_maxpool)
    assert "conv2d_bn" in {n.attrs.get("conv_op", n.op) for n in model.graph.nodes}
    x = rng.normal(size=(5, 8, 8, 2))
    y = rng.integers(0, 3, 5)

    def check():
        want = run(model.spec_graph, {"input_layer": x}, _model_state(model))
        np.testing.assert_allclose(model.predict(x), want["dense_1"], rtol=1e-10)

    check()
    first = model.predict(x)
    for _ in range(3):
        model.train_step(x, y)
    assert not np.allclose(model.predict(x), first)  # the state did change
    check()
    weights = {k: v * 1.5 + 0.1 for k, v in model.get_weights().items()}
    model.set_weights(weights)
    check()
