"""squeeze_excite on the device (kernels/squeeze_excite.cl, bind_squeeze_excite.py) against the
unfused NumPy reference in float64: odd and tiny maps, channels that take vectors of 16, 4 and
1, each hidden activation and gate, dense layers on a pooled vector without keepdims, layers
without biases, batches 1 and 7, under the device's own group shape and a GPU's (position
stripes summed apart in local memory), nothing written outside a buffer; the example specs'
blocks; one launch per block; the group shape within the device's limits."""

from __future__ import annotations

import numpy as np
import pytest
from se_cases import CASES
from test_fused import random_state

import cnnc
from cnnc.backends.numpy import NumpyBackend
from cnnc.backends.opencl.bind_squeeze_excite import group_shape
from cnnc.backends.opencl.target import Limits, Target
from cnnc.crosscheck import random_feeds
from cnnc.passes.pipeline import inference_graph


def _backend(device, tiling: str):
    from cnnc.backends.opencl.runtime import OpenCLBackend

    if tiling == "gpu" and device.kind == "gpu":
        pytest.skip("the native group shape of a GPU device is the GPU one")
    target = Target("gpu", device.compute_units) if tiling == "gpu" else None
    # guard regions around every buffer: a write past the gate's end is caught where it
    # happens (pocl once miscompiled the kernel so, all values right)
    return OpenCLBackend(device, target=target, canary=True)


def _check(spec, batch: int, backend, blocks: int) -> None:
    fused = inference_graph(spec)
    assert [n.op for n in fused.nodes].count("squeeze_excite") == blocks
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
    assert backend.check_canaries() == []


@pytest.mark.parametrize("tiling", ["native", "gpu"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("case", list(CASES))
def test_the_gate_matches_the_unfused_reference(case, batch, tiling, device):
    _check(cnnc.load_spec(CASES[case]), batch, _backend(device, tiling), 1)


@pytest.mark.parametrize("spec, blocks", [("efficientnet_mini", 3), ("mobilenetv3_mini", 2)])
def test_the_example_specs_match_the_unfused_reference(spec, blocks, device):
    _check(cnnc.load_spec(spec), 5, _backend(device, "native"), blocks)


def test_one_launch_per_block():
    from cnnc.backends.opencl.bind import bind_node
    from cnnc.backends.opencl.launches import BindContext

    graph = inference_graph(cnnc.load_spec("efficientnet_mini"))
    for node in (n for n in graph.nodes if n.op == "squeeze_excite"):
        for target in (Target("cpu", 2, native_vector=8), Target("gpu", 8)):
            binding = bind_node(node, BindContext(graph=graph, batch=4, target=target))
            (only,) = binding.launches
            ls = only.define_map["LS"]
            assert only.kernel == "squeeze_excite" and only.local_size == (ls,)
            assert only.global_size == (4 * ls,)


def test_the_group_shape_stays_within_the_device():
    avx2 = Target("cpu", 2, native_vector=8)
    # a CPU: one work-item, the pool's vectors two registers wide
    assert group_shape(49, 144, 6, avx2) == {"LS": 1, "PS": 1, "VW": 16}
    assert group_shape(196, 20, 4, avx2) == {"LS": 1, "PS": 1, "VW": 4}
    gpu_like = Limits(max_group=128, max_item_sizes=(128, 128, 64), local_memory=16384)
    gpu = Target("gpu", 8, limits=gpu_like)
    # 16 channels in vectors of 4: 4 work-items a stripe, 32 stripes of the 196 positions
    assert group_shape(196, 16, 4, gpu) == {"LS": 128, "PS": 32, "VW": 4}
    # 960 channels: 240 vectors, more than a group: one stripe
    assert group_shape(49, 960, 240, gpu) == {"LS": 128, "PS": 1, "VW": 4}
    # a single position: no stripes, and no more work-items than channel vectors
    assert group_shape(1, 8, 2, gpu) == {"LS": 2, "PS": 1, "VW": 4}
    # 100 channels: 25 vectors, five stripes in 128 work-items; local memory for two stripes
    # and the 10 hidden units, not three
    roomy = Target("gpu", 8, limits=Limits(max_group=1024))
    assert group_shape(49, 100, 10, roomy) == {"LS": 128, "PS": 5, "VW": 4}
    tight = Target("gpu", 8, limits=Limits(max_group=1024, local_memory=4 * (2 * 100 + 10)))
    assert group_shape(49, 100, 10, tight) == {"LS": 128, "PS": 2, "VW": 4}
    small = Target("gpu", 8, limits=Limits(max_group=64, max_item_sizes=(32, 64, 64)))
    assert group_shape(196, 16, 4, small)["LS"] == 32
