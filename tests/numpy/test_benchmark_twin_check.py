"""benchmarks/frameworks.py checks its PyTorch network against cnnc before timing it (issue 25).

The twin as timed (channels_last, cnnc's weights, 'same' padding as torch's own padding= where
Keras pads both sides alike and an F.pad copy only where the odd pixel goes after) must match
cnnc's NumPy forward, and a twin that differs must be refused rather than timed. The padding
counts are worked out by hand from the layer sizes. Skipped when torch is not installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import cnnc

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional comparison)")

ROOT = Path(__file__).resolve().parents[2]

# 10x9 input. conv 3x3 stride 1: pads 1/1 both axes (symmetric). conv 3x3 stride 2 on 10x9:
# rows out 5, total (5-1)*2+3-10 = 1 -> 0/1; columns out 5, total (5-1)*2+3-9 = 2 -> 1/1:
# asymmetric. Its output is 5x5: maxpool 3 stride 1 same pads 1/1 (symmetric); avgpool 2
# stride 2 same: out 3, total (3-1)*2+2-5 = 1 -> 0/1 (asymmetric), an average over the pixels
# inside only. depthwise 3x3 on 3x3: symmetric. Hence 3 by padding=, 2 by F.pad.
POOLS = """
network twin_pools
input 10x9x3
conv2d 4 3 same activation=relu
conv2d 6 3 strides=2 same
maxpool2d 3 strides=1 same
avgpool2d 2 same
depthwise_conv2d 3 same
flatten
dense 5 activation=softmax
"""


def _frameworks():
    spec = importlib.util.spec_from_file_location("frameworks", ROOT / "benchmarks/frameworks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _twin(fw, graph):
    weights = cnnc.compile(graph, backend="numpy", seed=0).get_weights()
    rng = np.random.default_rng(3)
    # biases off zero, so that a bias dropped or misplaced shows
    weights = {k: (v + rng.uniform(-0.2, 0.2, v.shape).astype(np.float32)
                   if k.endswith("bias") else v) for k, v in weights.items()}
    net = fw.torch_model(graph)
    fw.load_cnnc_weights(net, graph, weights)
    return net.to(memory_format=torch.channels_last), weights


@pytest.mark.parametrize("spec", [POOLS, "resnet_mini"], ids=["pools", "resnet_mini"])
def test_the_timed_twin_matches_cnnc_and_a_wrong_one_is_refused(spec):
    fw = _frameworks()
    graph = cnnc.load_spec(spec)
    net, weights = _twin(fw, graph)
    assert fw.check_twin(graph, net, weights) < 1e-4
    first = next(p for p in net.parameters() if p.dim() == 4)
    with torch.no_grad():
        first[0, 0, 0, 0] += 0.5
    with pytest.raises(fw.TwinMismatch, match="not timed"):
        fw.check_twin(graph, net, weights)


def test_padding_goes_to_torch_except_where_keras_pads_one_side_more():
    fw = _frameworks()
    assert fw.padding_counts(cnnc.load_spec(POOLS)) == (3, 2)
    # resnet_mini: 28x28; four 3x3 stride-1 'same' convolutions (the stem, two in the identity
    # block, one in the downsampling block) pad 1/1; the stride-2 one on 28 pads 0/1; the 1x1
    # shortcut is 'valid'.
    assert fw.padding_counts(cnnc.load_spec("resnet_mini")) == (4, 1)
    # The seed model: 7x7 and 3x3 stride-1 'same' convolutions only (its pools are 'valid').
    assert fw.padding_counts(cnnc.load_spec("fashion")) == (5, 0)


def test_the_benchmark_refuses_to_time_a_twin_that_differs(monkeypatch):
    """torch_tasks runs the check on the module it will time: a twin whose weights were not
    copied fails it."""
    fw = _frameworks()
    graph = cnnc.load_spec(POOLS)
    monkeypatch.setattr(fw, "load_cnnc_weights", lambda net, graph, weights: None)
    with pytest.raises(fw.TwinMismatch):
        fw.torch_tasks(graph, 2, [2], compile_mode="off")


def test_the_benchmark_tasks_run_and_say_what_pytorch_was_given():
    fw = _frameworks()
    graph = cnnc.load_spec(POOLS)
    tasks, given = fw.torch_tasks(graph, 2, [2], compile_mode="off")
    probs = tasks["forward"]()
    assert probs.shape == (2, 5) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.isfinite(tasks["train 2"]())
    assert "channels_last" in given and "eager (--torch-compile off)" in given
    assert "padding= on 3 layers, an F.pad copy on 2" in given
