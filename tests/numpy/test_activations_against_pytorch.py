"""Optional: issue 20's activations against PyTorch's modules (float64), forward and one training
step's gradients, each carried by a conv2d (split from it in training), as a layer of its own,
and by a dense layer. Skipped when torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.numpy.conv import conv_geometry
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph
from cnnc.testing.gradcheck import random_weights
from cnnc.testing.nets import chain, run

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional comparison)")
F = torch.nn.functional
nn = torch.nn

TWINS = {
    "silu": nn.SiLU(),
    "hard_sigmoid": nn.Hardsigmoid(),
    "hard_swish": nn.Hardswish(),
    "gelu": nn.GELU(),
    "gelu_tanh": nn.GELU(approximate="tanh"),
    "softplus": nn.Softplus(),
    "mish": nn.Mish(),
}


def t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("act", sorted(TWINS))
def test_forward_and_gradients_match_pytorch(act, rng):
    f = TWINS[act]
    g = chain((5, 4, 2), ("conv2d", 4, 3, {"padding": "same", "activation": act}),
              ("activation", act), ("flatten",), ("dense", 3, {"activation": act}))
    tg = training_graph(g, TrainConfig(loss="mean_squared_error"), optimizer=False,
                        wrt_inputs=True)
    w = random_weights(tg, rng)
    x = rng.normal(size=(3, 5, 4, 2)) * 3  # beyond the hard ones' kinks at -3 and 3
    target = rng.normal(size=(3, 3))
    params = ("conv2d/kernel", "conv2d/bias", "dense/kernel", "dense/bias")
    fetch = [names.LOSS, "dense", *(names.grad(p) for p in ("input_layer", *params))]
    ours = run(tg, {"input_layer": x, names.TARGET: target}, w, fetch)

    tx = t(x)
    tk, tb, dk, db = (t(w[p]) for p in params)
    geo = conv_geometry(x.shape, g.node("conv2d").attrs)
    h = F.pad(tx.permute(0, 3, 1, 2), (geo["PL"], geo["PR"], geo["PT"], geo["PB"]))
    h = f(f(F.conv2d(h, tk.permute(3, 2, 0, 1), tb)))
    y = f(h.permute(0, 2, 3, 1).reshape(3, -1) @ dk + db)
    loss = ((y - torch.tensor(target)) ** 2).mean()
    loss.backward()

    np.testing.assert_allclose(ours["dense"], y.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours[names.LOSS], loss.item(), rtol=1e-12)
    # PyTorch's hardsigmoid_backward multiplies by 1.0f / 6.0f, a float32 constant, in float64
    # too: 3e-8 off 1/6, once per hard_sigmoid the gradient passes (three here).
    rtol = 1e-7 if act == "hard_sigmoid" else 1e-9
    for name, tensor in zip(("input_layer", *params), (tx, tk, tb, dk, db), strict=True):
        np.testing.assert_allclose(ours[names.grad(name)], tensor.grad.numpy(), rtol=rtol,
                                   atol=1e-12, err_msg=name)
