"""Optional: layer_norm, channel_shuffle and global_maxpool2d against PyTorch (float64): the
forward values and one training step's gradients of a small network using all three, with the
same weights. Skipped when torch is not installed.

PyTorch twins: nn.LayerNorm over the channels of a map permuted to channels-last (ConvNeXt's
use), ShuffleNet's channel shuffle (F.channel_shuffle, and its reshape/transpose form), and
AdaptiveMaxPool2d(1).
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph
from cnnc.testing.gradcheck import random_weights
from cnnc.testing.nets import chain, run

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional comparison)")
F = torch.nn.functional


def t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


def shuffle_by_reshape(x, groups):
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


@pytest.mark.parametrize("shuffle", ["native", "reshape"])
def test_layer_norm_shuffle_max_forward_and_gradients(shuffle, rng):
    layers = [("conv2d", 6, 3, {"activation": "tanh"}), ("layer_norm", {"epsilon": 1e-6}),
              ("channel_shuffle", 3), ("global_maxpool2d",), ("dense", 4,
                                                               {"activation": "softmax"})]
    g = chain((6, 5, 2), *layers)
    tg = training_graph(g, TrainConfig(loss="sparse_categorical_crossentropy"),
                        optimizer=False, wrt_inputs=True)
    w = random_weights(tg, rng)
    w["layer_normalization/beta"] = rng.normal(0.0, 0.5, 6)
    x = rng.normal(1.0, 2.0, size=(3, 6, 5, 2))
    y = np.array([0, 3, 1], dtype=np.int32)
    params = ("input_layer", "conv2d/kernel", "conv2d/bias", "layer_normalization/gamma",
              "layer_normalization/beta", "dense/kernel", "dense/bias")
    fetch = [names.LOSS, "dense", "layer_normalization", "channel_shuffle",
             *(names.grad(p) for p in params)]
    ours = run(tg, {"input_layer": x, names.TARGET: y}, w, fetch)

    tensors = {"input_layer": t(x), **{p: t(w[p]) for p in params[1:]}}
    h = F.conv2d(tensors["input_layer"].permute(0, 3, 1, 2),
                 tensors["conv2d/kernel"].permute(3, 2, 0, 1), tensors["conv2d/bias"])
    h = torch.tanh(h)
    # nn.LayerNorm over the channels of the map permuted to channels-last, as in ConvNeXt
    ln = torch.nn.LayerNorm(6, eps=1e-6, dtype=torch.float64)
    with torch.no_grad():
        ln.weight.copy_(tensors["layer_normalization/gamma"])
        ln.bias.copy_(tensors["layer_normalization/beta"])
    normed = ln(h.permute(0, 2, 3, 1))
    h = normed.permute(0, 3, 1, 2)
    shuffled = F.channel_shuffle(h, 3) if shuffle == "native" else shuffle_by_reshape(h, 3)
    pooled = torch.nn.AdaptiveMaxPool2d(1)(shuffled).flatten(1)
    logits = pooled @ tensors["dense/kernel"] + tensors["dense/bias"]
    loss = F.cross_entropy(logits, torch.tensor(y, dtype=torch.long))
    loss.backward()

    np.testing.assert_allclose(ours[names.LOSS], loss.item(), rtol=1e-12)
    np.testing.assert_allclose(ours["layer_normalization"], normed.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(ours["channel_shuffle"],
                               shuffled.permute(0, 2, 3, 1).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["dense"], F.softmax(logits, 1).detach().numpy(), rtol=1e-10)
    grads = {**{p: tensors[p].grad for p in params if p != "layer_normalization/gamma"
                and p != "layer_normalization/beta"},
             "layer_normalization/gamma": ln.weight.grad,
             "layer_normalization/beta": ln.bias.grad}
    for name in params:
        np.testing.assert_allclose(ours[names.grad(name)], grads[name].numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)
