"""Optional: a squeeze-and-excite block and the broadcasting merges against PyTorch (float64):
forward values and one training step's gradients with the same weights. Skipped without torch.

Ties of maximum and minimum share the gradient evenly in both (torch.maximum's rule): the
maximum of the block's output and its relu ties wherever the output is positive.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph
from cnnc.testing.gradcheck import random_weights
from cnnc.testing.nets import run

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional comparison)")
F = torch.nn.functional


def t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


def _se_graph():
    return lower("se", [
        L("input", [(5, 4, 6)], name="x"),
        L("conv2d", [6, 3], {"padding": "same", "activation": "tanh"}, name="f", inputs=["x"]),
        L("global_avgpool2d", name="sq", inputs=["f"]),
        L("reshape", [(1, 1, 6)], name="r", inputs=["sq"]),
        L("dense", [3], {"activation": "relu"}, name="fc1", inputs=["r"]),
        L("dense", [6], {"activation": "sigmoid"}, name="gate", inputs=["fc1"]),
        L("multiply", name="se", inputs=["f", "gate"]),
        L("activation", ["relu"], name="pos", inputs=["se"]),
        L("maximum", name="mx", inputs=["se", "pos"]),            # ties where se > 0
        L("dense", [6], name="vec", inputs=["sq"]),
        L("subtract", name="sub", inputs=["mx", "vec"]),          # (C,) against a map
        L("minimum", name="mn", inputs=["sub", "gate", "f"]),
        L("average", name="avg", inputs=["mn", "se"]),
        L("add", name="out", inputs=["avg", "gate"]),
    ])


def test_squeeze_excite_forward_and_gradients_match_pytorch(rng):
    g = _se_graph()
    tg = training_graph(g, TrainConfig(loss="mean_squared_error"), optimizer=False,
                        wrt_inputs=True)
    w = random_weights(tg, rng)
    x = rng.normal(size=(3, 5, 4, 6))
    target = rng.normal(size=(3, 5, 4, 6))
    params = ["f/kernel", "f/bias", "fc1/kernel", "fc1/bias", "gate/kernel", "gate/bias",
              "vec/kernel", "vec/bias"]
    fetch = [names.LOSS, "out", *(names.grad(p) for p in ["x", *params])]
    ours = run(tg, {"x": x, names.TARGET: target}, w, fetch)

    tx = t(x)
    tw = {p: t(w[p]) for p in params}
    f = torch.tanh(F.conv2d(tx.permute(0, 3, 1, 2), tw["f/kernel"].permute(3, 2, 0, 1),
                            tw["f/bias"], padding=1)).permute(0, 2, 3, 1)   # NHWC
    sq = f.mean(dim=(1, 2))
    gate = torch.sigmoid(torch.relu(sq.reshape(3, 1, 1, 6) @ tw["fc1/kernel"] + tw["fc1/bias"])
                         @ tw["gate/kernel"] + tw["gate/bias"])                # (N, 1, 1, C)
    se = f * gate
    mx = torch.maximum(se, torch.relu(se))
    vec = sq @ tw["vec/kernel"] + tw["vec/bias"]                               # (N, C)
    sub = mx - vec.reshape(3, 1, 1, 6)
    mn = torch.minimum(torch.minimum(sub, gate), f)
    out = (mn + se) / 2 + gate
    loss = F.mse_loss(out, torch.tensor(target))
    loss.backward()

    assert (se > 0).any(), "no ties: the maximum's tie rule is not exercised"
    np.testing.assert_allclose(ours["out"], out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours[names.LOSS], loss.item(), rtol=1e-12)
    for name, tensor in [("x", tx), *tw.items()]:
        np.testing.assert_allclose(ours[names.grad(name)], tensor.grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)
