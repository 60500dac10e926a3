"""dense_pair (bind_dense_pair.py): a dense layer and the softmax head reading it, on the device
against the NumPy reference (cnnc/crosscheck.py's tolerance): sizes no vector divides; one
kernels/dense_pair.cl launch at batch 1, 2 and GEMV_ROWS, unfused past it (batch 9) and for a
hidden layer past HIDDEN_MAX_MACS; with the device's tiling and a GPU's; every variant the
tuner may choose for the two parts where the pair is unfused; and the example specs' heads."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.bind_dense_pair import HIDDEN_MAX_MACS
from cnnc.backends.opencl.bind_gemv import GEMV_ROWS
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.space import tuning_graph, variant_space

PAIR = "dense_pair.cl:dense_pair"

# (inputs; hidden units, hidden extra args; head units, head extra args)
PAIRS = [
    (7, 5, {"activation": "tanh"}, 3, {}),
    (13, 12, {"activation": "relu", "use_bias": False}, 10, {}),
    (120, 84, {"activation": "tanh"}, 10, {}),
    (33, 6, {"activation": "hard_swish"}, 4, {"use_bias": False}),
]


def pair_spec(k, units, hidden, classes, head):
    return {"network": "pair", "input": [k], "layers": [
        {"dense": units, **hidden, "name": "h"},
        {"dense": classes, "activation": "softmax", **head, "name": "d"}]}


def _graph(index):
    graph = inference_graph(cnnc.load_spec(pair_spec(*PAIRS[index])))
    assert graph.node("d").op == "dense_pair"
    return graph


def _check(graph, batch, device, target=None, variants=None):
    report = cross_check(graph, batch, device=device.index, seed=5, target=target,
                         variants=variants)
    return report.passed_kernels()


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 2, GEMV_ROWS, GEMV_ROWS + 1])
@pytest.mark.parametrize("index", range(len(PAIRS)))
def test_the_fused_pair_matches_numpy(index, batch, tiling, device):
    target = None
    if tiling != "native":
        if device.kind == "gpu":
            pytest.skip("the native tiling of a GPU device is the GPU tiling")
        target = Target("gpu", device.compute_units)
    kernels = _check(_graph(index), batch, device, target)["d"]
    if batch <= GEMV_ROWS:  # one launch, the hidden vector in local memory
        assert kernels == PAIR, kernels
    else:
        assert PAIR not in kernels


def test_a_large_hidden_layer_runs_unfused(device):
    k = HIDDEN_MAX_MACS // 16 + 1
    graph = inference_graph(cnnc.load_spec(pair_spec(k, 16, {"activation": "relu"}, 10, {})))
    kernels = _check(graph, 1, device)["d"]
    assert PAIR not in kernels and "gemv.cl:gemv" in kernels, kernels


def test_every_variant_of_the_tuners_space(device):
    """Unfused (past GEMV_ROWS), each part with each variant the tuner may give it."""
    from cnnc.backends.opencl.runtime import OpenCLBackend

    graph = _graph(1)
    tuned = tuning_graph(graph)
    assert [(n.name, n.op) for n in tuned.nodes if n.op != "input"] == [("h", "dense"),
                                                                        ("d", "dense")]
    batch = GEMV_ROWS + 1
    ctx = BindContext(tuned, batch, OpenCLBackend(device).target)
    for name in ("h", "d"):
        space = variant_space(tuned.node(name), ctx)
        assert len(space) > 1
        for variant in space:
            kernels = _check(graph, batch, device, variants={name: variant})["d"]
            assert PAIR not in kernels


@pytest.mark.parametrize("spec", ["lenet5", "fashion", "mobilenetv3_mini"])
def test_the_example_heads(spec, device):
    graph = inference_graph(cnnc.load_spec(spec))
    pairs = [n.name for n in graph.nodes if n.op == "dense_pair"]
    kernels = _check(graph, 1, device)
    assert pairs and all(kernels[p] == PAIR for p in pairs)


def test_unfused_launches_are_the_graphs_without_the_fusion(device):
    """Past GEMV_ROWS the pair binds to the very launches of the two dense nodes (batch 256's
    path does not move), the hidden vector in a workspace instead of a tensor."""
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.passes.pipeline import inference_pipeline, run_pipeline

    spec = cnnc.load_spec(pair_spec(*PAIRS[2]))
    unfused = run_pipeline(spec, [p for p in inference_pipeline() if p.name != "fuse_dense_pair"])
    backend = OpenCLBackend(device)

    def launches(graph):
        return [(lau.file, lau.kernel, lau.defines, lau.global_size, lau.local_size)
                for _, lau in backend.plan(graph, 256).launches()]
    assert launches(_graph(2)) == launches(unfused)
