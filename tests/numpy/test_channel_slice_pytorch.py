"""Optional: channel_slice against PyTorch (float64): a ShuffleNetV2 stride-1 unit (PyTorch's
`x.chunk(2, dim=1)`, one half through 1x1 / depthwise 3x3 / 1x1 convolutions, concatenated with
the other, shuffled) plus an overlapping third slice, its forward values and one training step's
gradients with the same weights, the input's gradient included (the sum of the slices'
gradients). Skipped when torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.frontend.dsl import load_dsl
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph
from cnnc.testing.gradcheck import random_weights
from cnnc.testing.nets import run

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional comparison)")
F = torch.nn.functional

UNIT = """
network unit
input 5x4x6
x1: channel_slice 0 3
x2: channel_slice(input_layer) 3 6
a: conv2d 3 1 tanh
b: depthwise_conv2d 3 same
c: conv2d 3 1 tanh
mid: channel_slice(input_layer) 1 5
cat: concatenate(x1, c, mid)
s: channel_shuffle 2
flatten
d: dense 4 softmax
"""


def t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


def test_shufflenet_unit_forward_and_gradients(rng):
    g = load_dsl(UNIT)
    tg = training_graph(g, TrainConfig(loss="sparse_categorical_crossentropy"),
                        optimizer=False, wrt_inputs=True)
    w = random_weights(tg, rng)
    for p in ("a/bias", "b/bias", "c/bias"):
        w[p] = rng.normal(0.0, 0.5, w[p].shape)
    x = rng.normal(0.5, 1.5, size=(3, 5, 4, 6))
    y = np.array([2, 0, 3], dtype=np.int32)
    params = ("input_layer", "a/kernel", "a/bias", "b/kernel", "b/bias", "c/kernel", "c/bias",
              "d/kernel", "d/bias")
    fetch = [names.LOSS, "x1", "x2", "mid", "s", *(names.grad(p) for p in params)]
    ours = run(tg, {"input_layer": x, names.TARGET: y}, w, fetch)

    ts = {"input_layer": t(x), **{p: t(w[p]) for p in params[1:]}}
    h = ts["input_layer"].permute(0, 3, 1, 2)
    x1, x2 = h.chunk(2, dim=1)
    b = torch.tanh(F.conv2d(x2, ts["a/kernel"].permute(3, 2, 0, 1), ts["a/bias"]))
    b = F.conv2d(b, ts["b/kernel"].permute(2, 3, 0, 1), ts["b/bias"], padding=1, groups=3)
    b = torch.tanh(F.conv2d(b, ts["c/kernel"].permute(3, 2, 0, 1), ts["c/bias"]))
    mid = h[:, 1:5]
    cat = torch.cat((x1, b, mid), dim=1)
    n, ch, hh, ww = cat.shape
    s = cat.view(n, 2, ch // 2, hh, ww).transpose(1, 2).reshape(n, ch, hh, ww)
    logits = s.permute(0, 2, 3, 1).flatten(1) @ ts["d/kernel"] + ts["d/bias"]
    loss = F.cross_entropy(logits, torch.tensor(y, dtype=torch.long))
    loss.backward()

    def nhwc(v):
        return v.permute(0, 2, 3, 1).detach().numpy()

    np.testing.assert_allclose(ours[names.LOSS], loss.item(), rtol=1e-12)
    for name, want in (("x1", x1), ("x2", x2), ("mid", mid)):  # copies: bit for bit
        np.testing.assert_array_equal(ours[name], nhwc(want), err_msg=name)
    np.testing.assert_allclose(ours["s"], nhwc(s), rtol=1e-12, atol=1e-15)
    for name in params:
        np.testing.assert_allclose(ours[names.grad(name)], ts[name].grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)
