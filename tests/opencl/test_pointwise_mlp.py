"""pointwise_mlp.cl (bind_pointwise_mlp.py): a 1x1 convolution and the 1x1 convolution reading
it in one launch, on the device against the NumPy reference (cnnc/crosscheck.py's tolerance):
odd pixel counts (a partial pixel block), hidden and output widths no vector divides, with and
without a residual, a batch norm folded into either part and biases, each activation family on
either part, batch 1 and 7, with the device's tiling and a GPU's (local-memory hidden arrays);
every variant the tuner may choose; and convnext_mini's blocks."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.space import variant_space

KERNEL = "pointwise_mlp.cl:pointwise_mlp"

# (input H, W, C; hidden channels; output channels; residual (C == out); expansion extras)
BLOCKS = [
    ((7, 7, 32), 128, 32, True, {}),  # convnext_mini's first stage
    ((5, 3, 7), 12, 5, False, {"use_bias": False}),  # gcd 1: scalar blocks
    ((3, 3, 8), 20, 8, True, {}),  # 20 hidden: no vector of 8 divides them
    ((1, 1, 3), 6, 9, False, {}),
    ((2, 9, 6), 24, 6, True, {"use_bias": False}),
]
ACTIVATIONS = ["gelu", "relu", "hard_swish", "silu", "relu6", "linear", "leaky_relu"]


def block_spec(shape, hidden, out, residual, extra, activation, bn, on_projection=False):
    """input -> layer_norm `entry` -> 1x1 conv (hidden) [-> batchnorm] -> 1x1 conv (out)
    [-> batchnorm] [+ entry] -> layer_norm, the activation after the expansion, or after the
    projection (and its residual add)."""
    act = [{"activation": activation}]
    layers = [{"layer_norm": None, "name": "entry"},
              {"conv2d": [hidden, 1], **extra, "name": "expand"},
              *([{"batchnorm": None, "name": "expand_bn"}] if bn else []),
              *([] if on_projection else act),
              {"conv2d": [out, 1], "name": "proj"},
              *([{"batchnorm": None, "name": "proj_bn"}] if bn else [])]
    if residual:
        layers.append({"add": {"inputs": ["entry", "proj_bn" if bn else "proj"],
                               "name": "join"}})
    if on_projection:
        layers += act
    layers.append({"layer_norm": None, "name": "exit"})
    return {"network": "block", "input": list(shape), "layers": layers}


def _target(tiling, device):
    if tiling == "native":
        return None
    if device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    return Target("gpu", device.compute_units)


def _check(graph, batch, device, target=None, variants=None):
    report = cross_check(graph, batch, device=device.index, seed=5, target=target,
                         variants=variants)
    bad = [c for c in report.checks if not c.passed]
    assert not bad, "; ".join(f"{c.node} ({c.op}, {c.kernels}): alone {c.local_rel:.2e} > "
                              f"{c.tolerance:.1e} or run {c.e2e_rel:.2e}" for c in bad)
    return {c.node: c.kernels for c in report.checks}


def _graph(index, activation, bn, on_projection=False):
    graph = inference_graph(cnnc.load_spec(block_spec(*BLOCKS[index], activation, bn,
                                                      on_projection)))
    mlps = [n for n in graph.nodes if n.op == "pointwise_mlp"]
    assert len(mlps) == 1, [n.op for n in graph.nodes]
    return graph, mlps[0].name


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("bn", [False, True], ids=["bias", "bn"])
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_the_fused_block_matches_numpy(index, bn, batch, tiling, device):
    graph, name = _graph(index, ACTIVATIONS[index], bn)
    kernels = _check(graph, batch, device, _target(tiling, device))
    assert KERNEL in kernels[name]
    assert ("batchnorm_fold" in kernels[name]) is bn


@pytest.mark.parametrize("on_projection", [False, True], ids=["expand", "project"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_on_either_part(activation, on_projection, device):
    graph, name = _graph(2, activation, True, on_projection)
    assert KERNEL in _check(graph, 3, device)[name]


@pytest.mark.parametrize("index", [0, 2])
def test_every_variant_of_the_tuners_space(index, device):
    graph, name = _graph(index, "gelu", index == 2)
    from cnnc.backends.opencl.runtime import OpenCLBackend

    ctx = BindContext(graph, 3, OpenCLBackend(device).target)
    space = variant_space(graph.node(name), ctx)
    assert len(space) > 2
    for variant in space:
        _check(graph, 3, device, variants={name: variant})


def test_convnext_minis_blocks(device):
    graph = inference_graph(cnnc.load_spec("convnext_mini"))
    mlps = [n.name for n in graph.nodes if n.op == "pointwise_mlp"]
    kernels = _check(graph, 2, device)
    assert len(mlps) == 3 and all(KERNEL in kernels[m] for m in mlps)
