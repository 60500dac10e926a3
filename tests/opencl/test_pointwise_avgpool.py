"""pointwise_avgpool.cl (bind_pointwise_avgpool.py): a 1x1 convolution and the global average
pooling reading it in one launch, on the device against the NumPy reference
(cnnc/crosscheck.py's tolerance): odd map sizes (a partial pixel block), channel and filter
counts no vector divides, with and without a batch norm folded in and a bias, each activation
family, keepdims, batch 1 and 7, with the device's tiling and a GPU's; every variant the tuner
may choose; and the example specs' heads. The same for a head whose 1x1 convolution reads a
channel shuffle's parts in place (pointwise_avgpool_gathered.cl: ShuffleNetV2's head)."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.space import variant_space

KERNEL = "pointwise_avgpool.cl:pointwise_avgpool"
GATHERED = "pointwise_avgpool_gathered.cl:pointwise_avgpool_gathered"

# (input H, W, C; filters; conv extra args; keepdims)
HEADS = [
    ((7, 7, 24), 32, {}, False),
    ((5, 3, 7), 5, {"use_bias": False}, True),
    ((1, 1, 3), 16, {}, False),
    ((9, 6, 48), 24, {}, True),
    ((2, 9, 1), 12, {"use_bias": False}, False),
]
# (input H, W; channels per part; parts = shuffle groups; filters; the slice of the shuffled
# channels the convolution reads, or None)
GATHERED_HEADS = [
    ((7, 7), 6, 4, 24, None),  # ShuffleNetV2's head: four parts, runs of stride 4
    ((5, 3), 3, 2, 5, None),  # a partial pixel block; 6 channels into 5 filters
    ((2, 9), 5, 3, 12, (3, 12)),  # a slice of the shuffle: runs that start inside a part
    ((1, 1), 2, 2, 16, None),
]
ACTIVATIONS = ["relu", "hard_swish", "silu", "relu6", "linear", "gelu", "leaky_relu"]


def head_spec(shape, filters, extra, keepdims, activation, bn):
    layers = [{"conv2d": [filters, 1], **extra, "name": "head"}]
    if bn:
        layers += [{"batchnorm": None}]
    layers += [{"activation": activation},
               {"global_avgpool2d": None, "keepdims": keepdims, "name": "pool"}]
    return {"network": "head", "input": list(shape), "layers": layers}


def gathered_head_spec(hw, part, parts, filters, cut, activation, bn):
    """`parts` 1x1 branches of `part` channels from the input, concatenated, shuffled in
    `parts` groups (and sliced to `cut`), a 1x1 convolution (and batch norm), the activation
    and the pooling: at inference one pointwise_avgpool node reading the branches."""
    layers = [{"conv2d": [part, 1], "activation": "tanh", "name": f"p{i}",
               "inputs": ["input_layer"]} for i in range(parts)]
    layers += [{"concatenate": None, "inputs": [f"p{i}" for i in range(parts)]},
               {"channel_shuffle": parts, "name": "sh"}]
    if cut:
        layers += [{"channel_slice": list(cut)}]
    layers += [{"conv2d": [filters, 1], "use_bias": not bn, "name": "head"}]
    if bn:
        layers += [{"batchnorm": None}]
    layers += [{"activation": activation}, {"global_avgpool2d": None, "name": "pool"}]
    return {"network": "gathered_head", "input": [*hw, 3], "layers": layers}


def _target(tiling, device):
    if tiling == "native":
        return None
    if device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    return Target("gpu", device.compute_units)


def _check(graph, batch, device, target=None, variants=None):
    report = cross_check(graph, batch, device=device.index, seed=5, target=target,
                         variants=variants)
    return report.passed_kernels()


def _graph(index, activation, bn):
    graph = inference_graph(cnnc.load_spec(head_spec(*HEADS[index], activation, bn)))
    assert graph.node("pool").op == "pointwise_avgpool"
    return graph


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("bn", [False, True], ids=["bias", "bn"])
@pytest.mark.parametrize("index", range(len(HEADS)))
def test_the_fused_head_matches_numpy(index, bn, batch, tiling, device):
    graph = _graph(index, ACTIVATIONS[index], bn)
    kernels = _check(graph, batch, device, _target(tiling, device))
    assert KERNEL in kernels["pool"]
    assert ("batchnorm_fold" in kernels["pool"]) is bn


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_in_the_epilogue(activation, device):
    _check(_graph(0, activation, True), 3, device)


def test_every_variant_of_the_tuners_space(device):
    graph = _graph(3, "hard_swish", True)
    from cnnc.backends.opencl.runtime import OpenCLBackend

    ctx = BindContext(graph, 3, OpenCLBackend(device).target)
    space = variant_space(graph.node("pool"), ctx)
    assert len(space) > 2
    for variant in space:
        _check(graph, 3, device, variants={"pool": variant})


def _gathered_graph(index, activation, bn):
    graph = inference_graph(cnnc.load_spec(gathered_head_spec(*GATHERED_HEADS[index],
                                                              activation, bn)))
    node = graph.node("pool")
    assert node.op == "pointwise_avgpool" and node.attrs["conv_op"].endswith("_gathered")
    assert len(node.inputs) == GATHERED_HEADS[index][2]
    return graph


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("bn", [False, True], ids=["bias", "bn"])
@pytest.mark.parametrize("index", range(len(GATHERED_HEADS)))
def test_a_gathered_head_matches_numpy(index, bn, batch, tiling, device):
    graph = _gathered_graph(index, ACTIVATIONS[index], bn)
    kernels = _check(graph, batch, device, _target(tiling, device))
    assert GATHERED in kernels["pool"]
    assert ("batchnorm_fold" in kernels["pool"]) is bn


def test_every_variant_of_the_tuners_space_on_a_gathered_head(device):
    graph = _gathered_graph(0, "hard_swish", True)
    from cnnc.backends.opencl.runtime import OpenCLBackend

    ctx = BindContext(graph, 3, OpenCLBackend(device).target)
    space = variant_space(graph.node("pool"), ctx)
    assert len(space) > 2
    for variant in space:
        assert GATHERED in _check(graph, 3, device, variants={"pool": variant})["pool"]


@pytest.mark.parametrize("spec", ["mobilenetv3_mini", "efficientnet_mini", "mobilenet_mini"])
def test_the_example_heads(spec, device):
    graph = inference_graph(cnnc.load_spec(spec))
    heads = [n.name for n in graph.nodes if n.op == "pointwise_avgpool"]
    kernels = _check(graph, 2, device)
    assert heads and all(KERNEL in kernels[h] for h in heads)


def test_shufflenet_minis_head(device):
    graph = inference_graph(cnnc.load_spec("shufflenet_mini"))
    (head,) = [n.name for n in graph.nodes if n.op == "pointwise_avgpool"]
    for batch in (1, 7):
        assert GATHERED in _check(graph, batch, device)[head]
