"""conv2d_avgpool on the device (bind_conv_maxpool.py, -D POOL_AVG=1): the convolution's kernels
taking the mean of whole 2x2 windows as they store (winograd.cl's output transforms,
conv2d_rows.cl) against the NumPy reference (cnnc/crosscheck.py's tolerance): even maps and odd
ones under floor pooling, 'same' and 'valid' convolutions, activations negative somewhere (the
mean comes after the epilogue), a folded batch norm and a residual, batch 1 and 7, with the
device's tiling and a GPU's; a GEMM variant unfused into its convolution and pool.cl's
avgpool2d; LeNet-5, whose two poolings both fuse."""

from __future__ import annotations

import pytest
from test_conv_maxpool import STORES, WINOGRAD, _check, _target  # the twin op's cases

import cnnc
from cnnc.passes.pipeline import inference_graph

POOL = "pool.cl:avgpool2d"
# (input H, W, C; filters; kernel size; conv extra args), every pooling window whole
MAPS = [
    ((7, 7, 8), 16, 3, {}),  # 7x7 -> 3x3: floor pooling, a tile half outside
    ((6, 10, 4), 12, 3, {"use_bias": False}),
    ((8, 6, 8), 8, 3, {"padding": "valid"}),  # 6x4 conv map
]
ROW_MAPS = [
    ((28, 28, 1), 6, 5, {}),  # LeNet-5's stem
    ((13, 11, 2), 8, 3, {}),
    ((9, 12, 3), 24, 5, {"use_bias": False}),
    ((10, 9, 1), 8, 3, {"strides": 2}),  # 5x5 conv map: floor
    # up to 8 channels where pooled (bind_conv_rows.ROWS_POOLED_MAX_CHANNELS)
    ((10, 10, 6), 16, 5, {"padding": "valid"}),  # LeNet-5's second convolution
    ((9, 7, 8), 8, 3, {}),
]
ACTIVATIONS = ["tanh", "elu", "gelu", "leaky_relu"]


def net_spec(shape, filters, kernel, conv, activation="tanh", bn=False, residual=False):
    layers = [{"conv2d": [shape[-1] if residual else filters, kernel], "padding": "same",
               **conv, "name": "c"}]
    if bn:
        layers += [{"batchnorm": None, "name": "bn"}]
    if residual:
        layers += [{"add": None, "inputs": ["in", layers[-1]["name"]], "name": "r"}]
    layers += [{"activation": activation}, {"avgpool2d": None, "pool_size": 2, "name": "p"}]
    return {"network": "pooled", "input": {"name": "in", "shape": list(shape)},
            "layers": layers}


def _graph(spec):
    graph = inference_graph(cnnc.load_spec(spec))
    assert graph.node("p").op == "conv2d_avgpool"
    return graph


@pytest.mark.parametrize("batch, tiling", [(1, "native"), (7, "native"), (7, "gpu-tiling")])
@pytest.mark.parametrize("variant", list(WINOGRAD))
@pytest.mark.parametrize("index", range(len(MAPS)))
def test_winograd_averages_as_it_stores(index, variant, batch, tiling, device):
    graph = _graph(net_spec(*MAPS[index], activation=ACTIVATIONS[index]))
    kernels = _check(graph, batch, device, _target(tiling, device), {"p": WINOGRAD[variant]})
    assert STORES[variant] in kernels["p"] and POOL not in kernels["p"]


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("index", range(len(ROW_MAPS)))
def test_the_row_kernel_averages_as_it_stores(index, batch, tiling, device):
    graph = _graph(net_spec(*ROW_MAPS[index],
                            activation=ACTIVATIONS[(-1 - index) % len(ACTIVATIONS)]))
    kernels = _check(graph, batch, device, _target(tiling, device))
    assert STORES["rows"] in kernels["p"] and POOL not in kernels["p"]


@pytest.mark.parametrize("variant", ["m4", "m2-fused", "rows"])
def test_batch_norm_and_residual_in_the_epilogue(variant, device):
    maps = ROW_MAPS[1] if variant == "rows" else MAPS[0]
    graph = _graph(net_spec(*maps, activation="elu", bn=True, residual=True))
    kernels = _check(graph, 3, device,
                     variants=None if variant == "rows" else {"p": WINOGRAD[variant]})
    assert STORES[variant] in kernels["p"] and "batchnorm_fold" in kernels["p"]


def test_a_gemm_variant_runs_the_pair(device):
    graph = _graph(net_spec(*MAPS[1]))
    kernels = _check(graph, 3, device, variants={"p": {"algo": "direct"}})
    assert POOL in kernels["p"]


@pytest.mark.parametrize("batch", [1, 7])
def test_lenet5(batch, device):
    """Both poolings fused: the 'same' 5x5 stem and the second convolution (6 channels,
    'valid') in the row kernel, each pooling as it stores: one launch each."""
    graph = inference_graph(cnnc.load_spec("lenet5"))
    pooled = [n.name for n in graph.nodes if n.op == "conv2d_avgpool"]
    assert len(pooled) == 2 and not any(n.op == "avgpool2d" for n in graph.nodes)
    kernels = _check(graph, batch, device)
    for name in pooled:
        assert STORES["rows"] in kernels[name] and POOL not in kernels[name], kernels[name]
