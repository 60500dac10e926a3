"""depthwise_layer_norm.cl (bind_depthwise_layer_norm.py): a depthwise convolution and the layer
norm over its channels in one launch, on the device against the NumPy reference
(cnnc/crosscheck.py's tolerance): odd maps (a row's last block short), channel counts no vector
divides and the most the op takes, kernels 3 and 7, strides 1 and 2, dilation, with and without
bias, activation, center and scale, batch 1 and 7, with the device's blocks and a GPU's; and
convnext_mini, whose three block norms fuse."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.ir.depthwise_layer_norm import MAX_CHANNELS
from cnnc.passes.pipeline import inference_graph

KERNEL = "depthwise_layer_norm.cl:depthwise_layer_norm"

# (input H, W, C; kernel; depthwise extra args; layer_norm extra args)
BLOCKS = [
    ((7, 7, 32), 7, {}, {}),
    ((5, 9, 7), 3, {"activation": "gelu"}, {"center": False}),
    ((3, 3, MAX_CHANNELS), 7, {}, {}),
    ((9, 6, 12), 3, {"strides": 2, "use_bias": False}, {"scale": False}),
    ((6, 5, 1), 3, {"dilation_rate": 2}, {"center": False, "scale": False}),
    ((11, 13, 20), 7, {"strides": 2, "activation": "relu"}, {}),
]


def block_spec(shape, k, dw, ln):
    return {"network": "block", "input": list(shape),
            "layers": [{"depthwise_conv2d": None, "kernel_size": k, "padding": "same", **dw,
                        "name": "d"},
                       {"layer_norm": None, "epsilon": 1e-6, **ln, "name": "n"}]}


def block_graph(index):
    graph = inference_graph(cnnc.load_spec(block_spec(*BLOCKS[index])))
    assert graph.node("n").op == "depthwise_layer_norm"
    return graph


def _target(tiling, device):
    if tiling == "native":
        return None
    if device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    return Target("gpu", device.compute_units)


def _check(graph, batch, device, target=None):
    return cross_check(graph, batch, device=device.index, seed=5, target=target).passed_kernels()


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_the_fused_pair_matches_numpy(index, batch, tiling, device):
    kernels = _check(block_graph(index), batch, device, _target(tiling, device))
    assert KERNEL in kernels["n"]


def test_convnext_mini_matches_numpy(device):
    graph = inference_graph(cnnc.load_spec("convnext_mini"))
    kernels = _check(graph, 3, device)
    fused = [n.name for n in graph.nodes if n.op == "depthwise_layer_norm"]
    assert len(fused) == 3 and all(KERNEL in kernels[name] for name in fused)
