"""benchmarks/frameworks.py's PyTorch twins compute what cnnc computes, with cnnc's weights.

The speed comparison is only fair if the PyTorch module is the same network: for every example
spec, its forward (inference mode) on cnnc's weights, copied into the twin, matches cnnc's NumPy
reference, and so does the loss of a training step (batch statistics) where the spec has no
dropout (whose masks differ between the two). Skipped when torch is not installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import cnnc

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional comparison)")

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(p for p in (ROOT / "specs").glob("*.cnn"))
# The specs of issue 20's families: their twins must exist (the older ones have them too).
NEW_FAMILIES = ("mobilenetv3_mini", "efficientnet_mini", "convnext_mini", "shufflenet_mini",
                "unet_mini")


def _frameworks():
    spec = importlib.util.spec_from_file_location("frameworks", ROOT / "benchmarks/frameworks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _random_weights(model, rng) -> dict[str, np.ndarray]:
    """cnnc's initial weights with every parameter moved off its initial value (biases and
    batch/layer-norm parameters start at 0 and 1), so that a layout mistake shows."""
    out = {}
    for name, w in model.get_weights().items():
        if name.endswith("moving_variance"):
            out[name] = rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
        elif name.endswith(("gamma", "moving_mean", "beta", "bias")):
            base = 1.0 if name.endswith("gamma") else 0.0
            out[name] = (base + rng.uniform(-0.3, 0.3, w.shape)).astype(np.float32)
        else:
            out[name] = w
    return out


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_twin_forward_and_loss_match_cnnc(spec):
    fw = _frameworks()
    graph = cnnc.load_spec(spec)
    net = fw.torch_model(graph)
    if net is None:
        assert spec.stem not in NEW_FAMILIES, f"{spec.stem}: the PyTorch twin lacks an op"
        pytest.skip(f"{spec.stem}: the twin does not cover this network")
    model = cnnc.compile(graph, backend="numpy", seed=0)
    rng = np.random.default_rng(1)
    weights = _random_weights(model, rng)
    model.set_weights(weights)
    fw.load_cnnc_weights(net, graph, weights)
    shape = graph.shape_of(graph.inputs[0])[1:]
    x = rng.random((4, *shape), dtype=np.float32)
    nchw = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    reconstruction = graph.train.reconstruction
    net.eval()
    with torch.no_grad():
        out = net(nchw)
    if reconstruction:
        theirs = out.permute(0, 2, 3, 1).numpy()
    else:
        theirs = torch.softmax(out, dim=1).numpy()
    np.testing.assert_allclose(model.predict(x), theirs, rtol=2e-4, atol=2e-5)
    if any(n.op == "dropout" for n in graph.nodes):
        return
    # Training mode: batch statistics; the loss cnnc's step reports is that of this forward.
    y = rng.integers(0, graph.shape_of(graph.outputs[0])[-1], size=4)
    net.train()
    with torch.no_grad():
        out = net(nchw)
        loss = (torch.nn.functional.mse_loss(out, nchw) if reconstruction
                else torch.nn.functional.cross_entropy(
                    out, torch.from_numpy(y), label_smoothing=graph.train.label_smoothing))
    got = model.train_step(x, x if reconstruction else y.astype(np.int32))
    assert got == pytest.approx(float(loss), rel=2e-4)
