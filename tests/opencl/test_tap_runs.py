"""conv2d_forward's runs of taps (kernels/conv2d.cl, TAP_RUNS): one reduction over a kernel
row's taps where every row of the register block has them inside the input, the others tap by
tap. Checked by the gate (the node's shape and its edge shapes against the NumPy reference,
canaries around every buffer, the zeros buffer included: a run that reads padding reads KW * C
zeros) under blocks of 8, 7, 3 and 1 rows, so that blocks start at every column of the map and
meet its left edge, its right edge or both: odd sizes, Keras 'same' windows with stride 2
(padding after the map only), channels that are not multiples of 16, a 5x5 window wider than
its 3-pixel map, a dilation along the rows (runs need it along the columns only), and
resnet_mini's 28x28x16 stride-2 layer itself. And the binding's zeros cover a run."""

from __future__ import annotations

import pytest

from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import describe

# (input H, W, C; the convolution layer; its filters' vector width)
LAYERS = [
    ((10, 8, 5), {"conv2d": [6, 3], "strides": 2, "padding": "same"}, 2),
    ((9, 7, 17), {"conv2d": [24, 3], "strides": 2, "padding": "same", "activation": "relu"}, 8),
    ((6, 3, 3), {"conv2d": [8, 5], "padding": "same", "activation": "tanh"}, 8),
    ((7, 9, 4), {"conv2d": [12, [3, 2]], "dilation_rate": [2, 1]}, 4),
    ((11, 10, 2), {"conv2d": [16, [5, 3]], "strides": [2, 3], "padding": "same"}, 16),
    ((28, 28, 16), {"conv2d": [32, 3], "strides": 2, "padding": "same", "use_bias": False}, 16),
]
ROWS = (8, 7, 3, 1)
AVX512 = Target("cpu", 2, native_vector=16)


def graph_of(shape, layer):
    spec = {"network": "runs", "input": list(shape), "layers": [{**layer, "name": "conv"}]}
    return inference_graph(load_spec(spec))


def variant_of(rows, vw):
    # "im2col": 0: the implicit GEMM on few channels too, where windows would be copied out
    return {"algo": "direct", "MR": rows, "VW": vw, "NV": 1, "im2col": 0}


@pytest.mark.parametrize("index", range(len(LAYERS)))
def test_runs_of_taps_match_the_reference(index, device):
    shape, layer, vw = LAYERS[index]
    graph = graph_of(shape, layer)
    node = graph.node("conv")
    backend = OpenCLBackend(device, target=AVX512)
    gate = Gate(backend, graph, node, 3)
    failures = []
    for rows in ROWS:
        variant = variant_of(rows, vw)
        verdict = gate.check(variant)
        if not verdict.admitted:
            failures.append(f"{describe(variant)}: {verdict.reason}")
    assert failures == []


def test_the_zeros_cover_a_kernel_row():
    """A run whose rows are in the padding reads KW * C zeros at once (a tap, C)."""
    shape, layer, vw = LAYERS[1]
    graph = graph_of(shape, layer)
    plan = make_plan(graph, 2, AVX512, variants={"conv": variant_of(8, vw)})
    binding = plan.bindings["conv"]
    assert [lau.kernel for lau in binding.launches] == ["conv2d_forward"]
    assert binding.zeros >= 3 * 17
    assert BindContext(graph, 2, AVX512).shape("conv")[1:] == (5, 4, 24)
