"""Fused ops on the device against the NumPy reference: batch norm folded into the convolution
or dense layer before it (conv2d_bn, dense_bn; with a residual add fused in too, conv2d_bn_add,
dense_bn_add), with batch norm state far from its initial values, after training steps and after
loading weights."""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import CASES

import cnnc
from cnnc.backends.numpy import NumpyBackend
from cnnc.crosscheck import random_feeds
from cnnc.passes.pipeline import inference_graph

FOLDED_CASES = [c for c in CASES if "batchnorm" in str(c.layers)]
FUSED_OPS = {"conv2d_bn", "dense_bn", "conv2d_bn_add", "dense_bn_add",
             "conv2d_bn_gated", "conv2d_bn_add_gated",  # with a squeeze-excite gate folded in
             "depthwise_pointwise",  # its parts' batch norms folded (depthwise_conv2d_bn ...)
             "conv2d_bn_gathered"}  # a 1x1 one reading ShuffleNet's gathers in place


def random_state(graph, seed: int) -> dict[str, np.ndarray]:
    from cnnc.initializers import initial_values

    rng = np.random.default_rng(seed)
    state = initial_values(graph.state, seed)
    for name, value in state.items():
        suffix = name.rsplit("/", 1)[-1]
        if suffix in ("gamma", "moving_variance"):
            state[name] = rng.uniform(0.3, 2.0, value.shape).astype(np.float32)
        elif suffix in ("beta", "moving_mean", "bias"):
            state[name] = rng.normal(0, 0.5, value.shape).astype(np.float32)
    return state


def _close(got, want, what):
    scale = max(float(np.abs(want).max()), 1.0)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * scale, err_msg=what)


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("case", FOLDED_CASES, ids=[c.name for c in FOLDED_CASES])
def test_folded_inference_matches_the_unfolded_reference(case, tiling, device):
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.backends.opencl.target import Target

    if tiling == "gpu-tiling" and device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    # A GPU's work sizes (narrow vectors, short row chunks) run on whatever device there is.
    target = Target("gpu", device.compute_units, force_local_tiles=True) \
        if tiling == "gpu-tiling" else None
    backend = OpenCLBackend(device, target=target)
    spec = cnnc.load_spec(case.spec())
    folded = inference_graph(spec)
    assert FUSED_OPS & {n.op for n in folded.nodes}
    state = random_state(spec, 11)
    feeds = random_feeds(spec, case.batch, 3)
    ref = NumpyBackend("float64")
    ref.init_state(spec.state, state)
    want = ref.compile(spec, case.batch).run(feeds, spec.outputs)
    backend.init_state(folded.state, state)
    got = backend.compile(folded, case.batch).run(feeds, folded.outputs)
    for name in spec.outputs:
        _close(got[name], want[name], name)


SPEC = {
    "network": "folded", "input": [9, 9, 3],
    "layers": [
        {"conv2d": [8, 3], "padding": "same", "use_bias": False}, "batchnorm",
        {"activation": "relu"}, {"maxpool2d": 2},
        {"conv2d": [12, 3], "padding": "same"}, {"batchnorm": None, "center": False},
        {"activation": "relu"}, "flatten",
        {"dense": 10}, {"batchnorm": None, "scale": False}, {"activation": "relu"},
        {"dense": 4, "activation": "softmax"},
    ],
}


def test_folded_weights_follow_training_and_loaded_weights(device, tmp_path):
    """The device folds the live state on every run: predict after training steps (moving
    statistics and weights changed on the device) and after load_weights matches the NumPy
    reference run unfolded on the same weights."""
    model = cnnc.compile(SPEC, backend="opencl", device=device.index, seed=4)
    assert {"conv2d_bn", "dense_bn"} <= {n.op for n in model.graph.nodes}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 9, 9, 3)).astype(np.float32)
    y = rng.integers(0, 4, 6)
    ref = cnnc.compile(SPEC, backend="numpy", seed=4, dtype="float64")
    ref.graph = model.spec_graph  # the reference runs the graph as loaded: nothing folded

    def check(what):
        ref.set_weights(model.get_weights())
        _close(model.predict(x), ref.predict(x), what)

    check("initial")
    before = model.predict(x)
    for _ in range(3):
        model.train_step(x, y)
    assert not np.allclose(model.predict(x), before, atol=1e-4)
    check("after training")
    path = tmp_path / "w.safetensors"
    model.save_weights(str(path))
    other = cnnc.compile(SPEC, backend="numpy", seed=9)
    weights = {k: (v * 1.3 + 0.05 if k.endswith(("gamma", "moving_mean")) else v)
               for k, v in other.get_weights().items()}
    other.set_weights(weights)
    other.save_weights(str(path))
    model.load_weights(str(path))
    check("after load_weights")
