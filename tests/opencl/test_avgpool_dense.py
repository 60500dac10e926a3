"""avgpool_dense (bind_avgpool_dense.py): a global average pooling and the dense layer reading
it, on the device against the NumPy reference (cnnc/crosscheck.py's tolerance): odd map sizes,
channel and unit counts no vector divides; a softmax head (gemv.cl's dense_softmax reading the
map, one launch) at batch 1, 2 and 7, unfused past GEMV_ROWS (batch 9) and for other
activations (gemv at batch 1, the direct GEMM at 7); with the device's tiling and a GPU's;
every variant the tuner may choose for its dense part; and the example specs' heads."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.bind_gemv import GEMV_ROWS
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.space import tuning_graph, variant_space

HEAD = "gemv.cl:dense_softmax"
POOL = "pool.cl:global_avgpool2d"

# (input H, W, C; units; dense extra args)
HEADS = [
    ((7, 7, 13), 10, {}),
    ((5, 3, 7), 4, {"use_bias": False}),
    ((1, 1, 3), 5, {}),
    ((3, 3, 40), 6, {}),
]


def head_spec(shape, units, extra, activation="softmax"):
    return {"network": "head", "input": list(shape), "layers": [
        {"global_avgpool2d": None, "name": "pool"},
        {"dense": units, "activation": activation, **extra, "name": "d"}]}


def _graph(index, activation="softmax"):
    graph = inference_graph(cnnc.load_spec(head_spec(*HEADS[index], activation)))
    assert graph.node("d").op == "avgpool_dense"
    return graph


def _check(graph, batch, device, target=None, variants=None):
    report = cross_check(graph, batch, device=device.index, seed=5, target=target,
                         variants=variants)
    return report.passed_kernels()


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 2, 7, GEMV_ROWS + 1])
@pytest.mark.parametrize("index", range(len(HEADS)))
def test_the_fused_head_matches_numpy(index, batch, tiling, device):
    target = None
    if tiling != "native":
        if device.kind == "gpu":
            pytest.skip("the native tiling of a GPU device is the GPU tiling")
        target = Target("gpu", device.compute_units)
    kernels = _check(_graph(index), batch, device, target)["d"]
    if batch <= GEMV_ROWS:  # one launch, the map read by the head
        assert kernels == HEAD, kernels
    else:
        assert POOL in kernels and HEAD not in kernels


@pytest.mark.parametrize("batch", [1, 7])
def test_other_activations_run_unfused(batch, device):
    kernels = _check(_graph(0, "relu"), batch, device)["d"]
    assert POOL in kernels and HEAD not in kernels


def test_every_variant_of_the_tuners_space(device):
    from cnnc.backends.opencl.runtime import OpenCLBackend

    graph = _graph(3)
    tuned = tuning_graph(graph)
    assert [n.op for n in tuned.nodes if n.name in ("d/pool", "d")] == ["global_avgpool2d",
                                                                         "dense"]
    space = variant_space(tuned.node("d"), BindContext(tuned, 2, OpenCLBackend(device).target))
    assert len(space) > 2 and space[0]["algo"] == "dense_softmax"
    for variant in space:
        kernels = _check(graph, 2, device, variants={"d": variant})["d"]
        assert (HEAD in kernels) is (variant["algo"] == "dense_softmax")
        assert (POOL in kernels) is (variant["algo"] != "dense_softmax")


@pytest.mark.parametrize("spec", ["resnet_mini", "fashion-best"])
def test_the_example_heads(spec, device):
    graph = inference_graph(cnnc.load_spec(spec))
    heads = [n.name for n in graph.nodes if n.op == "avgpool_dense"]
    kernels = _check(graph, 1, device)
    assert heads and all(kernels[h] == HEAD for h in heads)
