"""conv2d_rows.cl (bind_conv_rows.py): a convolution of few input channels computed directly,
on the device against the NumPy reference (cnnc/crosscheck.py's tolerance), on odd sizes,
strides, dilations, 'same' and 'valid' padding, with and without a batch norm folded in, each
activation family, a residual added and a gate scaling the input, at batch 1 and 7; and with the
device's tiling and a GPU's (the driver's work-groups, narrow vectors)."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.bind_conv_rows import ROWS_MAX_CHANNELS
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

KERNEL = "conv2d_rows.cl:conv2d_rows"

# (input H, W, C; the convolution layer): every input channel count the kernel takes.
LAYERS = [
    ((28, 28, 1), {"conv2d": [16, 3], "strides": 2, "padding": "same"}),
    ((13, 11, 1), {"conv2d": [24, 3], "strides": 2, "padding": "valid"}),
    ((12, 12, 1), {"conv2d": [8, 7], "padding": "same"}),  # the seed model's 7x7 stem, smaller
    ((9, 10, 2), {"conv2d": [5, [3, 2]], "strides": [2, 1], "padding": "same"}),
    ((11, 9, 3), {"conv2d": [6, 3], "dilation_rate": 2, "padding": "same"}),
    ((7, 8, 4), {"conv2d": [12, [2, 3]], "strides": [1, 3], "use_bias": False}),
    ((5, 17, 3), {"conv2d": [32, 1], "strides": 2}),
]
ACTIVATIONS = ["relu", "hard_swish", "silu", "tanh", "linear", "softmax"]


def stem_spec(shape, layer, activation, bn):
    layers = [{**layer, "name": "stem"}]
    if bn:
        layers += [{"batchnorm": None}]
    layers += [{"activation": activation}]
    return {"network": "stem", "input": list(shape), "layers": layers}


def _target(tiling, device):
    if tiling == "native":
        return None
    if device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    return Target("gpu", device.compute_units)


def _check(graph, batch, device, target=None):
    return cross_check(graph, batch, device=device.index, seed=3, target=target).passed_kernels()


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("bn", [False, True], ids=["bias", "bn"])
@pytest.mark.parametrize("index", range(len(LAYERS)))
def test_few_channels_run_the_row_kernel_and_match_numpy(index, bn, batch, tiling, device):
    shape, layer = LAYERS[index]
    activation = ACTIVATIONS[index % len(ACTIVATIONS)]
    graph = inference_graph(cnnc.load_spec(stem_spec(shape, layer, activation, bn)))
    kernels = _check(graph, batch, device, _target(tiling, device))
    stem = next(k for node, k in kernels.items() if node.startswith(("stem", "activation",
                                                                     "batch")) and k != "-")
    assert KERNEL in stem


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_in_the_epilogue(activation, device):
    layer = LAYERS[0][1]
    graph = inference_graph(cnnc.load_spec(stem_spec((10, 9, 1), layer, activation, True)))
    kernels = _check(graph, 2, device)
    assert any(KERNEL in k for k in kernels.values())


def test_more_channels_keep_the_implicit_gemm(device):
    shape = (6, 6, ROWS_MAX_CHANNELS + 1)
    graph = inference_graph(cnnc.load_spec(stem_spec(shape, LAYERS[0][1], "relu", False)))
    kernels = _check(graph, 2, device)
    assert not any(KERNEL in k for k in kernels.values())


def residual_spec():
    return {"network": "res", "input": [9, 7, 3], "layers": [
        {"conv2d": [3, 3], "padding": "same", "name": "c1"},
        {"add": None, "inputs": ["c1", "input_layer"], "name": "j1"},
        {"activation": "relu", "name": "r1"},
    ]}


def gated_spec():
    # squeeze-excite on a 3-channel map: the gate's product folds into the convolution reading
    # it (cnnc/ir/gated.py), which this kernel then runs.
    return {"network": "se", "input": [9, 8, 3], "layers": [
        {"global_avgpool2d": None, "keepdims": True, "name": "pool"},
        {"conv2d": [3, 1], "activation": "sigmoid", "name": "gate"},
        {"multiply": None, "inputs": ["input_layer", "gate"], "name": "scaled"},
        {"conv2d": [8, 3], "strides": 2, "padding": "same", "name": "after"},
    ]}


def test_a_residual_is_added_as_it_stores(device):
    graph = inference_graph(cnnc.load_spec(residual_spec()))
    kernels = _check(graph, 7, device)
    assert any(KERNEL in k for k in kernels.values())
    assert any(n.op.endswith("_add") for n in graph.nodes)


def test_a_gated_input_is_scaled_as_it_loads(device):
    graph = inference_graph(cnnc.load_spec(gated_spec()))
    assert any("gated" in n.op for n in graph.nodes), [n.op for n in graph.nodes]
    kernels = _check(graph, 7, device)
    assert any(KERNEL in k for k in kernels.values())
