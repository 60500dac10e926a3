"""depthwise_pointwise on the device (kernels/depthwise_pointwise.cl,
bind_depthwise_pointwise.py) against the unfused NumPy reference in float64: op_cases.py's case
and the example specs' blocks with batch norm state far from its initial values, under the
device's own block and a GPU's; the register block it picks; the launches it makes."""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import CASES
from test_fused import random_state

import cnnc
from cnnc.backends.numpy import NumpyBackend
from cnnc.backends.opencl.bind_depthwise_pointwise import block
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import random_feeds
from cnnc.passes.pipeline import inference_graph

CASE = next(c for c in CASES if c.name == "depthwise_pointwise")


def _backend(device, tiling: str):
    from cnnc.backends.opencl.runtime import OpenCLBackend

    if tiling == "gpu-tiling" and device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    target = Target("gpu", device.compute_units) if tiling == "gpu-tiling" else None
    return OpenCLBackend(device, target=target)


def _check(spec, batch: int, backend, fused_nodes: int) -> None:
    fused = inference_graph(spec)
    assert [n.op for n in fused.nodes].count("depthwise_pointwise") == fused_nodes
    state = random_state(spec, 11)
    feeds = random_feeds(spec, batch, 3)
    ref = NumpyBackend("float64")
    ref.init_state(spec.state, state)
    want = ref.compile(spec, batch).run(feeds, spec.outputs)
    backend.init_state(fused.state, state)
    got = backend.compile(fused, batch).run(feeds, fused.outputs)
    for name in spec.outputs:
        scale = max(float(np.abs(want[name]).max()), 1.0)
        np.testing.assert_allclose(got[name], want[name], rtol=2e-5, atol=2e-5 * scale,
                                   err_msg=name)


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 3])
def test_the_case_matches_the_unfused_reference(tiling, batch, device):
    _check(cnnc.load_spec(CASE.spec()), batch, _backend(device, tiling), 3)


@pytest.mark.parametrize("spec, blocks", [("mobilenet_mini", 2), ("shufflenet_mini", 4),
                                          ("mobilenetv3_mini", 1)])
def test_the_example_specs_match_the_unfused_reference(spec, blocks, device):
    _check(cnnc.load_spec(spec), 5, _backend(device, "native"), blocks)


def test_the_block_covers_the_filters_where_registers_allow():
    avx512, avx2 = Target("cpu", 2, native_vector=16), Target("cpu", 2, native_vector=8)
    # mobilenet_mini's 32 filters: two vectors of 16, eight pixels (16 + 2 + 8 + 1 registers)
    assert block(32, 32, avx512) == {"MR": 8, "VW": 16, "NV": 2, "VD": 16}
    # shufflenet_mini's 24 filters: three vectors of 8, four pixels within 32 registers
    assert block(24, 24, avx512) == {"MR": 4, "VW": 8, "NV": 3, "VD": 8}
    # 64 filters on AVX2's 16 registers: eight vectors do not fit; four of 8, two pixels
    assert block(64, 32, avx2) == {"MR": 2, "VW": 8, "NV": 4, "VD": 8}
    assert block(7, 10, avx512) == {"MR": 8, "VW": 1, "NV": 1, "VD": 2}
    assert block(32, 16, Target("gpu", 8))["MR"] == 4


def test_one_launch_after_the_hoisted_folds():
    from cnnc.backends.opencl.bind import bind_node
    from cnnc.backends.opencl.launches import BindContext

    graph = inference_graph(cnnc.load_spec("mobilenet_mini"))
    node = next(n for n in graph.nodes if n.op == "depthwise_pointwise")
    binding = bind_node(node, BindContext(graph=graph, batch=4, target=Target("cpu", 2)))
    kernels = [(lau.kernel, lau.once) for lau in binding.launches]
    assert kernels == [("batchnorm_fold", True), ("batchnorm_fold", True),
                       ("depthwise_pointwise", False)]
    assert binding.constants == (0, 1, 2, 3)
