"""The strided input gradient by phases (cnnc/backends/opencl/strided_grad.py) with a stride of 1
on one axis only, on the device's own tiling and on the GPU tiling (local tiles): the tiled
path once left every dx value of such a layer wrong while equal strides passed."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import training_graph


@pytest.mark.parametrize("strides", [(2, 1), (1, 2), (2, 2), (3, 1)])
@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
def test_input_gradient_by_phases_with_unequal_strides(device, strides, tiling):
    spec = cnnc.load_spec(f"network t\ninput 9x8x3\nconv2d 4 (2, 3) strides={strides} relu\n"
                          "flatten\ndense 3 softmax\n")
    graph = training_graph(spec, wrt_inputs=True)
    target = None
    if tiling == "gpu-tiling":
        if device.kind == "gpu":
            pytest.skip("the native tiling of a GPU device is the GPU tiling")
        target = Target("gpu", device.compute_units, force_local_tiles=True)
    result = cross_check(graph, 3, device=device, target=target)
    assert result.passed, result.first_failure
    grad = next(c for c in result.checks if c.op == "conv2d_grad_input")
    assert "conv2d_grad_input_phases" in grad.kernels
