"""conv2d_maxpool on the device (bind_conv_maxpool.py): the convolution's kernels pooling 2x2
windows as they store (winograd.cl's output transforms, conv2d_rows.cl) against the NumPy
reference (cnnc/crosscheck.py's tolerance): odd and even maps, 'same' and 'valid' convolutions
and poolings, floor pooling, each activation family (those negative somewhere too: the max
comes after the epilogue), a folded batch norm and a residual, batch 1 and 7, with the device's
tiling and a GPU's; every variant of the tuner's space (a GEMM's unfused into its convolution and
pool.cl's maxpool2d, the same two launches as without the fusion); the example specs."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.winograd import winograd_error_factor
from cnnc.crosscheck import cross_check
from cnnc.ir.conv_maxpool import parts
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.space import tuning_graph, variant_space

POOL = "pool.cl:maxpool2d"
WINOGRAD = {"m4": {"algo": "winograd", "wino_m": 4}, "m2": {"algo": "winograd", "wino_m": 2},
            "m4-fused": {"algo": "winograd", "wino_m": 4, "wino_fused": 2},
            "m2-fused": {"algo": "winograd", "wino_m": 2, "wino_fused": 4}}
STORES = {"m4": "winograd.cl:winograd_output", "m2": "winograd.cl:winograd_output",
          "m4-fused": "winograd.cl:winograd_fused", "m2-fused": "winograd.cl:winograd_fused",
          "rows": "conv2d_rows.cl:conv2d_rows"}

# (input H, W, C; filters; kernel size; conv extra args; pooling args)
MAPS = [
    ((7, 7, 8), 16, 3, {}, {}),  # 7x7 -> 3x3: a tile half outside, floor pooling
    ((9, 5, 6), 8, 3, {}, {"padding": "same"}),  # 'same' pooling keeps the half windows
    ((6, 10, 4), 12, 3, {"use_bias": False}, {}),
    ((8, 6, 8), 8, 3, {"padding": "valid"}, {"ceil_mode": True}),  # 6x4 conv map
    ((11, 11, 3), 4, 3, {}, {"pads": (0, 1, 0, 1)}),
]
# the row kernel's (few channels): a stem
ROW_MAPS = [
    ((14, 14, 1), 16, 7, {}, {}),
    ((13, 11, 2), 8, 3, {}, {"padding": "same"}),
    ((9, 12, 3), 24, 5, {"use_bias": False}, {}),
    ((10, 9, 1), 8, 3, {"strides": 2}, {"padding": "same"}),  # 5x5 conv map
    # up to 8 channels where pooled (bind_conv_rows.ROWS_POOLED_MAX_CHANNELS)
    ((10, 10, 6), 16, 5, {"padding": "valid"}, {}),
    ((9, 7, 8), 8, 3, {}, {}),
]
ACTIVATIONS = ["relu", "elu", "gelu", "tanh", "linear", "hard_swish", "sigmoid", "leaky_relu"]


def net_spec(shape, filters, kernel, conv, pool, activation="relu", bn=False, residual=False):
    layers = [{"conv2d": [shape[-1] if residual else filters, kernel], "padding": "same",
               **conv, "name": "c"}]
    if bn:
        layers += [{"batchnorm": None, "name": "bn"}]
    if residual:
        layers += [{"add": None, "inputs": ["in", layers[-1]["name"]], "name": "r"}]
    layers += [{"activation": activation}, {"maxpool2d": None, "pool_size": 2, **pool,
                                             "name": "p"}]
    return {"network": "pooled", "input": {"name": "in", "shape": list(shape)},
            "layers": layers}


def _graph(spec):
    graph = inference_graph(cnnc.load_spec(spec))
    assert graph.node("p").op == "conv2d_maxpool"
    return graph


def _target(tiling, device):
    if tiling == "native":
        return None
    if device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    return Target("gpu", device.compute_units)


def _check(graph, batch, device, target=None, variants=None, factor=1.0):
    """Each node's kernels against NumPy; `factor`: the tolerance's, for an algorithm that
    states a larger error (the tuner's gate: crosscheck.py's tolerance times the factor)."""
    report = cross_check(graph, batch, device=device.index, seed=5, target=target,
                         variants=variants)
    return report.passed_kernels(factor)


@pytest.mark.parametrize("batch, tiling", [(1, "native"), (7, "native"), (7, "gpu-tiling")])
@pytest.mark.parametrize("variant", list(WINOGRAD))
@pytest.mark.parametrize("index", range(len(MAPS)))
def test_winograd_pools_as_it_stores(index, variant, batch, tiling, device):
    graph = _graph(net_spec(*MAPS[index], activation=ACTIVATIONS[index]))
    kernels = _check(graph, batch, device, _target(tiling, device), {"p": WINOGRAD[variant]})
    assert STORES[variant] in kernels["p"] and POOL not in kernels["p"]


# F(7x7) pools as it stores only where one tile covers the map: MAPS' 7x7 and 6x4 maps and a
# 7x7 map under 'same' pooling (its last window holds one row and column of the tile); the
# others run the convolution and pool.cl's pooling (the same two launches as unfused).
M7_MAPS = [*MAPS, ((7, 7, 5), 8, 3, {}, {"padding": "same"})]
M7 = {"m7": {"algo": "winograd", "wino_m": 7},
      "m7-fused": {"algo": "winograd", "wino_m": 7, "wino_fused": 2}}


@pytest.mark.parametrize("batch, tiling", [
    pytest.param(1, "native", marks=pytest.mark.slow(reason="batch 7 covers the same code")),
    (7, "native"),
    pytest.param(7, "gpu-tiling", marks=pytest.mark.slow(reason="F(4x4)'s GPU tiling is the same")),
])
@pytest.mark.parametrize("variant", list(M7))
@pytest.mark.parametrize("index", range(len(M7_MAPS)))
def test_f7_pools_as_it_stores_where_one_tile_covers_the_map(index, variant, batch, tiling,
                                                             device):
    if variant == "m7-fused" and tiling != "native":
        pytest.skip("the one-launch kernel has no GPU tiling of its own")
    graph = _graph(net_spec(*M7_MAPS[index], activation=ACTIVATIONS[index]))
    node = graph.node("p")
    conv, _ = parts(node, tuple(graph.shape_of(x) for x in node.inputs))
    one_tile = max(conv.shape[1:3]) <= 7
    kernels = _check(graph, batch, device, _target(tiling, device), {"p": M7[variant]},
                     winograd_error_factor(7))
    store = STORES["m4-fused" if variant.endswith("fused") else "m4"]
    assert store in kernels["p"] and (POOL not in kernels["p"]) is one_tile, kernels["p"]


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("index", range(len(ROW_MAPS)))
def test_the_row_kernel_pools_as_it_stores(index, batch, tiling, device):
    graph = _graph(net_spec(*ROW_MAPS[index], activation=ACTIVATIONS[-1 - index]))
    kernels = _check(graph, batch, device, _target(tiling, device))
    assert STORES["rows"] in kernels["p"] and POOL not in kernels["p"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("variant", ["m4", "m2-fused", "rows"])
def test_every_activation_before_the_max(variant, activation, device):
    maps = ROW_MAPS[1] if variant == "rows" else MAPS[0]
    graph = _graph(net_spec(*maps, activation=activation))
    _check(graph, 3, device, variants=None if variant == "rows" else {"p": WINOGRAD[variant]})


@pytest.mark.parametrize("variant", ["m4", "m4-fused", "rows"])
@pytest.mark.parametrize("bn, residual", [(True, False), (False, True), (True, True)])
def test_batch_norm_and_residual_in_the_epilogue(bn, residual, variant, device):
    maps = ROW_MAPS[1] if variant == "rows" else MAPS[1]
    graph = _graph(net_spec(*maps, activation="elu", bn=bn, residual=residual))
    kernels = _check(graph, 3, device,
                     variants=None if variant == "rows" else {"p": WINOGRAD[variant]})
    assert STORES[variant] in kernels["p"]
    assert ("batchnorm_fold" in kernels["p"]) is bn


@pytest.mark.parametrize("index", [0, 3])
def test_every_variant_of_the_tuners_space(index, device):
    """The fused node's space is its convolution's (tuning_graph); a variant with a GEMM runs
    the convolution and pool.cl's pooling, as unfused; Winograd's and the row kernel's (the
    default for these 8 channels, pooled) pool as they store."""
    from cnnc.backends.opencl.runtime import OpenCLBackend

    graph = _graph(net_spec(*MAPS[index], activation="gelu"))
    tuned = tuning_graph(graph)
    assert tuned.node("p").op == "conv2d" and tuned.node("p/pool").op == "maxpool2d"
    space = variant_space(tuned.node("p"), BindContext(tuned, 3, OpenCLBackend(device).target))
    assert len(space) > 4 and any(v.get("algo") == "winograd" for v in space)
    for variant in space:
        kernels = _check(graph, 3, device, variants={"p": variant})
        assert (POOL in kernels["p"]) is (variant.get("algo") not in ("winograd", "conv_rows"))
    assert space[0]["algo"] == "conv_rows"


@pytest.mark.parametrize("spec", ["fashion", "fashion-plus"])
def test_the_example_specs(spec, device):
    """Every pooling of the two Fashion-MNIST models fused: the seed's stem in the row kernel,
    the others by Winograd (the one-launch kernel where few channels keep its arrays small)."""
    graph = inference_graph(cnnc.load_spec(spec))
    pooled = [n for n in graph.nodes if n.op == "conv2d_maxpool"]
    assert len(pooled) == 3
    names = {n.name: ("rows" if graph.shape_of(n.inputs[0])[-1] <= 4
                      else "m4-fused" if graph.shape_of(n.inputs[0])[-1] <= 32 else "m4")
             for n in pooled}
    assert list(names.values()).count("rows") == (spec == "fashion")
    variants = {n: WINOGRAD[v] for n, v in names.items() if v != "rows"}
    kernels = _check(graph, 2, device, variants=variants)
    for n, v in names.items():
        assert STORES[v] in kernels[n] and POOL not in kernels[n], (n, kernels[n])
