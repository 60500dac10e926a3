"""Optional: forward values and gradients against PyTorch with the same weights (float64).

Skipped when torch is not installed (it is never a dependency of cnnc). Layout conversions:
NHWC -> NCHW, HWIO kernels -> OIHW, Dense (in, out) -> Linear (out, in); TensorFlow's 'same'
padding (extra row/column bottom/right) is applied with F.pad, since PyTorch pads symmetrically,
by Keras' rule written out here (cnnc's own geometry would let a wrong rule check itself).
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.numpy import NumpyBackend
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph
from cnnc.testing.gradcheck import random_weights
from cnnc.testing.nets import chain, run

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional comparison)")
F = torch.nn.functional


def t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def keras_same(size, k, stride, dilation):
    """TensorFlow's 'same': out = ceil(size / stride), the smaller half of the padding before."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def tf_pad(x, k, attrs, value=0.0):
    """An NCHW tensor padded for a Keras layer's window of k x k (none when 'valid')."""
    if attrs["padding"] != "same":
        return x
    strides = attrs["strides"] or (k, k)  # a pooling's default: its window
    dilation = attrs.get("dilation_rate") or (1, 1)
    (pt, pb), (pl, pr) = (keras_same(x.shape[2], k, strides[0], dilation[0]),
                          keras_same(x.shape[3], k, strides[1], dilation[1]))
    return F.pad(x, (pl, pr, pt, pb), value=value)


CONVS = [
    {"strides": (1, 1), "padding": "valid"},
    {"strides": (2, 2), "padding": "same"},
    {"strides": (2, 1), "padding": "same"},
    {"dilation_rate": (2, 2), "padding": "same", "groups": 2},
]


@pytest.mark.parametrize("conv", CONVS)
def test_conv_bn_pool_dense_forward_and_gradients(conv, rng):
    layers = [("conv2d", 4, 3, {**conv, "activation": "tanh"}), ("batchnorm",),
              ("maxpool2d", 2, {"padding": "same"}), ("avgpool2d", 2, {"strides": 1}),
              ("flatten",), ("dense", 3, {"activation": "softmax"})]
    g = chain((7, 6, 2), *layers)
    tg = training_graph(g, TrainConfig(loss="sparse_categorical_crossentropy"),
                        optimizer=False, wrt_inputs=True)
    w = random_weights(tg, rng)
    x = rng.normal(size=(3, 7, 6, 2))
    y = np.array([0, 2, 1], dtype=np.int32)
    fetch = [names.LOSS, "dense", "batch_normalization/stats", *(
        names.grad(p) for p in ("input_layer", "conv2d/kernel", "conv2d/bias",
                                "batch_normalization/gamma", "batch_normalization/beta",
                                "dense/kernel", "dense/bias"))]
    ours = run(tg, {"input_layer": x, names.TARGET: y}, w, fetch)

    # The same network in PyTorch.
    tx, tk, tb = t(x), t(w["conv2d/kernel"]), t(w["conv2d/bias"])
    gamma, beta = t(w["batch_normalization/gamma"]), t(w["batch_normalization/beta"])
    dk, db = t(w["dense/kernel"]), t(w["dense/bias"])
    node = g.node("conv2d")
    h = F.conv2d(tf_pad(nchw(tx), 3, node.attrs), tk.permute(3, 2, 0, 1), tb,
                 stride=node.attrs["strides"], dilation=node.attrs["dilation_rate"],
                 groups=node.attrs["groups"])
    h = torch.tanh(h)
    h = F.batch_norm(h, None, None, gamma, beta, training=True, eps=1e-3)
    pool = g.node("max_pooling2d")
    h = F.max_pool2d(tf_pad(h, 2, pool.attrs, -np.inf), 2)
    h = F.avg_pool2d(h, 2, stride=1)
    logits = nhwc(h).reshape(3, -1) @ dk + db  # Keras flattens (h, w, c)
    loss = F.cross_entropy(logits, torch.tensor(y, dtype=torch.long))
    loss.backward()

    np.testing.assert_allclose(ours[names.LOSS], loss.item(), rtol=1e-12)
    np.testing.assert_allclose(ours["dense"], F.softmax(logits, 1).detach().numpy(), rtol=1e-10)
    for name, tensor in [("input_layer", tx), ("conv2d/kernel", tk), ("conv2d/bias", tb),
                         ("batch_normalization/gamma", gamma), ("batch_normalization/beta", beta),
                         ("dense/kernel", dk), ("dense/bias", db)]:
        np.testing.assert_allclose(ours[names.grad(name)], tensor.grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)


def test_batchnorm_inference_and_moving_mean(rng):
    x = rng.normal(2.0, 3.0, size=(5, 3, 3, 4))
    g = chain((3, 3, 4), ("batchnorm", {"momentum": 0.9}))
    w = random_weights(g, rng)
    ours = run(g, {"input_layer": x}, w)["batch_normalization"]
    theirs = F.batch_norm(nchw(t(x)), torch.tensor(w["batch_normalization/moving_mean"]),
                          torch.tensor(w["batch_normalization/moving_variance"]),
                          t(w["batch_normalization/gamma"]), t(w["batch_normalization/beta"]),
                          training=False, eps=1e-3)
    np.testing.assert_allclose(ours, nhwc(theirs).detach().numpy(), rtol=1e-12)
    # Moving mean: PyTorch's momentum is Keras' 1 - momentum. (Moving variances differ on
    # purpose: PyTorch stores the unbiased batch variance, Keras the biased one.)
    tg = training_graph(g, TrainConfig(loss="mean_squared_error"), optimizer=False)
    backend = NumpyBackend("float64")
    backend.init_state(tg.state, w)
    backend.compile(tg, 5).run({"input_layer": x, names.TARGET: x}, [names.LOSS])
    running = torch.tensor(w["batch_normalization/moving_mean"])
    F.batch_norm(nchw(torch.tensor(x)), running, torch.ones(4, dtype=torch.float64),
                 training=True, momentum=0.1)
    np.testing.assert_allclose(backend.read_state(["batch_normalization/moving_mean"])[
        "batch_normalization/moving_mean"], running.numpy(), rtol=1e-12)
