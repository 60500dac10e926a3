"""conv2d_grad_rows.cl (bind_grad_rows.py): the kernel gradient of a convolution of few input
channels computed directly along input rows, on the device against the NumPy reference through
the tuner's correctness gate (the node alone on its real shape and its odd edge shapes, canaries
around every buffer it writes): 1 to 4 channels, 3x3, 5x5, 7x7 and non-square kernels, strides
1, 2 and (2, 1), dilation 2, 'same' (Keras' extra pixel after) and 'valid', filters that are not
a multiple of the vector width, batch 1 and 7; with its default block, blocks that cut a kernel
row into several tap blocks, one and several parts, the driver's work-groups, and a GPU's
tiling. It must be the CPU default where it applies and nowhere else."""

from __future__ import annotations

import pytest

from cnnc.backends.opencl.bind_grad_rows import NAME, ROWS_MAX_CHANNELS
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import training_graph
from cnnc.tune.gate import Gate

FILE = "conv2d_grad_rows.cl"

# (label, input H W C, the convolution layer, batch)
LAYERS = [
    ("7x7 same, 1 channel (the seed's stem, smaller)", (12, 12, 1),
     {"conv2d": [8, 7], "padding": "same"}, 7),
    ("3x3 stride 2 same, 1 channel, 10 filters", (13, 11, 1),
     {"conv2d": [10, 3], "strides": 2, "padding": "same"}, 1),
    ("5x5 valid, 2 channels, 5 filters", (11, 9, 2), {"conv2d": [5, 5]}, 7),
    ("3x3 dilation 2 same, 3 channels", (11, 9, 3),
     {"conv2d": [6, 3], "dilation_rate": 2, "padding": "same"}, 7),
    ("3x2 stride (2, 1) same, 4 channels, 12 filters", (9, 10, 4),
     {"conv2d": [12, [3, 2]], "strides": [2, 1], "padding": "same"}, 1),
    ("7x7 stride 2 same, 3 channels, 16 filters", (15, 14, 3),
     {"conv2d": [16, 7], "strides": 2, "padding": "same"}, 7),
]

# Beside the default: a kernel row cut into tap blocks of 2 and 3 (the last one past the row's
# end), single floats, several parts taking their rows 3 at a time together, and the driver's
# work-groups; with stride 1 and no
# dilation the taps in vectors (all filters or one per work-item; vectors of 4 and 8, whose
# lanes past the row's taps are dropped), with and without a work-group's rows taken together.
OTHERS = [
    {"MR": 2, "VW": 1, "NV": 1, "split": 3, "sync_rows": 3},
    {"MR": 3, "VW": 1, "NV": 2, "split": 1, "row_groups": 0},
]


def _spec(shape, layer) -> dict:
    return {"network": "stem", "input": list(shape),
            "layers": [{**layer, "name": "stem"}, "flatten",
                       {"dense": 3, "activation": "softmax"}]}


def _grad_kernel(graph):
    (node,) = [n for n in graph.nodes if n.op == "conv2d_grad_kernel"]
    return node


def _graph(shape, layer):
    return training_graph(load_spec(_spec(shape, layer)))


def _unit_steps(layer):
    return "strides" not in layer and "dilation_rate" not in layer


def _fits(variant, filters):
    return filters % (variant["VW"] * variant["NV"]) == 0


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=[la[0] for la in LAYERS])
def test_row_kernel_gradient_matches_numpy(index, backend):
    _, shape, layer, batch = LAYERS[index]
    graph = _graph(shape, layer)
    node = _grad_kernel(graph)
    gate = Gate(backend, graph, node, batch)
    filters = node.attrs["filters"]
    tap_vectors = [{"tap_vector": 1, "MR": filters, "VW": 4, "NV": 1, "split": 2},
                   {"tap_vector": 1, "MR": 1, "VW": 8, "NV": 1, "sync_rows": 2}]
    for other in [{}, *OTHERS, *(tap_vectors if _unit_steps(layer) else [])]:
        if "tap_vector" not in other and other and not _fits(other, filters):
            continue
        variant = {"algo": NAME, **other}
        verdict = gate.check(variant)
        assert verdict.admitted, f"{variant}: {verdict.reason}"


def test_gpu_tiling_matches_numpy(device):
    """A GPU's tiles and the driver's work-groups, where the kernel is a variant only."""
    from cnnc.backends.opencl.runtime import OpenCLBackend

    backend = OpenCLBackend(device, target=Target("gpu", device.compute_units))
    _, shape, layer, batch = LAYERS[5]
    graph = _graph(shape, layer)
    verdict = Gate(backend, graph, _grad_kernel(graph), batch).check({"algo": NAME})
    assert verdict.admitted, verdict.reason


def _files(graph, batch, target, variants=None):
    plan = make_plan(graph, batch, target, variants=variants)
    return {lau.file for lau in plan.bindings[_grad_kernel(graph).name].launches}


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=[la[0] for la in LAYERS])
def test_the_cpu_default_for_few_channels(index):
    _, shape, layer, batch = LAYERS[index]
    graph = _graph(shape, layer)
    assert FILE in _files(graph, batch, Target("cpu", 2))
    assert FILE not in _files(graph, batch, Target("gpu", 8))
    assert FILE in _files(graph, batch, Target("gpu", 8),
                          {_grad_kernel(graph).name: {"algo": NAME}})


def test_more_channels_keep_the_implicit_gemm():
    graph = _graph((9, 9, ROWS_MAX_CHANNELS + 1), LAYERS[0][2])
    assert FILE not in _files(graph, 2, Target("cpu", 2))


def test_the_tuner_offers_it_and_its_parts():
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.tune.space import variant_space

    _, shape, layer, _ = LAYERS[0]
    graph = _graph(shape, layer)
    space = variant_space(_grad_kernel(graph), BindContext(graph, 128, Target("cpu", 2)))
    assert space[0]["algo"] == NAME
    rows = [v for v in space if v["algo"] == NAME]
    assert len({v["split"] for v in rows if "split" in v}) >= 3
    assert any(v["algo"] == "direct" for v in space)
    assert any(v.get("tap_vector") for v in rows) and any(v.get("sync_rows") for v in rows)
