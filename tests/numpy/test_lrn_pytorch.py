"""Optional: the lrn layer against PyTorch's nn.LocalResponseNorm (float64), forward values and
the input gradient of a training graph, for windows of 1, 3, 5 and 7 over odd channel counts
(one window wider than the channels). Skipped when torch is not installed.

nn.LocalResponseNorm(size, alpha, beta, k) computes ONNX's LRN over dim 1 of NCHW (k is bias):
cnnc's lrn over the last axis of NHWC, the map permuted.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph
from cnnc.testing.nets import chain, run

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional comparison)")


@pytest.mark.parametrize("size,alpha,beta,bias,channels", [
    (1, 1.0, 0.5, 2.0, 3),
    (3, 2.0, 0.75, 1.0, 7),
    (5, 1e-4, 0.75, 1.0, 9),
    (5, 3.0, 1.5, 0.5, 5),
    (7, 0.5, 0.25, 1.5, 3),
])
def test_lrn_forward_and_input_gradient_match_pytorch(size, alpha, beta, bias, channels, rng):
    g = chain((4, 3, channels), ("lrn", size, {"alpha": alpha, "beta": beta, "bias": bias}))
    tg = training_graph(g, TrainConfig(loss="mean_squared_error"), optimizer=False,
                        wrt_inputs=True)
    x = rng.normal(0.0, 2.0, size=(2, 4, 3, channels))
    target = rng.normal(size=x.shape)
    ours = run(tg, {"input_layer": x, names.TARGET: target}, {},
               ["lrn", names.grad("input_layer")])

    tx = torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64, requires_grad=True)
    ty = torch.nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=bias)(tx)
    loss = torch.nn.functional.mse_loss(
        ty, torch.tensor(target.transpose(0, 3, 1, 2), dtype=torch.float64))
    loss.backward()
    np.testing.assert_allclose(ours["lrn"], ty.detach().numpy().transpose(0, 2, 3, 1),
                               rtol=1e-12)
    np.testing.assert_allclose(ours[names.grad("input_layer")],
                               tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-15)
