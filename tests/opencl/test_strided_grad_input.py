"""The input gradient of strided convolutions by phases (kernels/conv2d.cl:
conv2d_grad_input_phases, cnnc/backends/opencl/strided_grad.py) against the NumPy reference in
float64, and against the direct kernel: strides 2 and 3, kernels 1, 3 and 5, same and valid padding,
sizes the stride does not divide, batch 1 and 3, channels not a multiple of the vector width,
groups, dilation with strides (a geometry the layers refuse but the kernel handles), a CPU's
register blocks and a GPU's local tiles on whatever device there is.

Tolerance: crosscheck.py's float32 tolerance (2e-6 relative to max|reference|, times the square
root of the number of terms summed, KH*KW*F/groups).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnc.backends.numpy.call import Call
from cnnc.backends.numpy.table import IMPLS
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.primitives import conv_geometry
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.strided_grad import phase_blocks, phase_pixels
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import LOCAL_TOLERANCE
from cnnc.ir.args import Attrs
from cnnc.ir.convpool import output_length
from cnnc.ir.graph import Graph, Node, StateSpec

SLOW = pytest.mark.slow


def grad_input_graph(h, w, c, f, k, s, padding, groups=1, dilation=(1, 1)) -> Graph:
    """y = conv2d_grad_input(dy, kernel) of a conv2d (h, w, c) -> (oh, ow, f), kernel k x k[1]."""
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (s, s) if isinstance(s, int) else s
    oh = output_length(h, kh, sh, padding, dilation[0])
    ow = output_length(w, kw, sw, padding, dilation[1])
    attrs = Attrs(filters=f, input_shape=(h, w, c), kernel_size=(kh, kw), strides=(sh, sw),
                  padding=padding, dilation_rate=dilation, groups=groups)
    dy = Node("dy", "input", attrs=Attrs(shape=(oh, ow, f), dtype="float32"),
              shape=(None, oh, ow, f))
    node = Node("y", "conv2d_grad_input", ("dy", "k"), attrs, shape=(None, h, w, c))
    return Graph("gin", (dy, node), ("y",), (StateSpec("k", (kh, kw, c // groups, f)),))


def run_both(graph: Graph, batch: int, device, variant: dict | None, target=None,
             isolate=False):
    """(OpenCL output with `variant` on node 'y', NumPy float64 reference, the node's launches,
    the tolerance relative to max|reference|)."""
    rng = np.random.default_rng(batch * 11 + graph.nodes[0].shape[1])
    values = {"dy": rng.standard_normal((batch, *graph.nodes[0].shape[1:])).astype(np.float32)}
    spec = graph.state[0]
    values["k"] = (rng.standard_normal(spec.shape) * 0.3).astype(np.float32)
    backend = OpenCLBackend(device, target=target, isolate=isolate)
    if variant is not None:
        backend.choose_variants = lambda g, b: {"y": variant}
    backend.init_state(graph.state, values)
    exe = backend.compile(graph, batch)
    got = exe.run({"dy": values["dy"]}, ["y"])["y"]
    node = graph.node("y")
    ref = IMPLS[node.op](Call(node=node, dtype=np.dtype(np.float64)),
                         values["dy"].astype(np.float64), values["k"].astype(np.float64))
    kh, kw, _, f = spec.shape
    tol = LOCAL_TOLERANCE * math.sqrt(kh * kw * f)
    return got, ref, exe.plan.bindings["y"].launches, tol


def kernels(launches) -> set[str]:
    return {lau.kernel for lau in launches}


def assert_close(got, ref, tol) -> None:
    scale = max(np.abs(ref).max(), 1e-30)
    err = np.abs(got.astype(np.float64) - ref).max() / scale
    assert err <= tol, f"relative error {err:.3e} > tolerance {tol:.3e}"


# (batch, h, w, c, f, kernel, strides, padding, groups)
CASES = [
    (3, 7, 9, 5, 6, 3, 2, "same", 1),
    (1, 8, 5, 3, 7, 3, 2, "valid", 1),
    (3, 7, 7, 6, 4, 1, 2, "valid", 1),  # odd pixels of the 1x1 kernel: no tap, zeros
    (1, 10, 11, 4, 5, 5, 2, "same", 1),
    (3, 8, 10, 5, 3, 3, 3, "same", 1),
    (1, 11, 7, 6, 9, 5, 3, "valid", 1),
    (3, 9, 7, 6, 4, 1, 3, "same", 1),
    (3, 7, 9, 8, 6, 3, 2, "same", 2),
    (2, 9, 8, 6, 6, (3, 5), (2, 3), "same", 3),
    (3, 1, 1, 5, 4, 3, 2, "same", 1),
    pytest.param((3, 3, 4, 16, 24, 3, 2, "valid", 1), marks=SLOW),
    pytest.param((1, 13, 12, 12, 10, 5, 3, "same", 2), marks=SLOW),
]


def _case_id(case) -> str:
    return "-".join(str(x).replace(" ", "") for x in case)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_phases_match_reference(device, case):
    batch, h, w, c, f, k, s, padding, groups = case
    graph = grad_input_graph(h, w, c, f, k, s, padding, groups)
    got, ref, launches, tol = run_both(graph, batch, device, None)
    assert "conv2d_grad_input_phases" in kernels(launches)
    assert "conv2d_grad_input" not in kernels(launches)
    assert_close(got, ref, tol)
    # The direct kernel (the tuner's other variant) computes the same.
    direct, _, launches, _ = run_both(graph, batch, device, {"algo": "direct"})
    assert "conv2d_grad_input" in kernels(launches)
    assert_close(direct, ref, tol)


@pytest.mark.parametrize(
    "case",
    [(3, 7, 9, 5, 8, 3, 2, "same", 1), (1, 8, 7, 3, 16, 5, 3, "valid", 1),
     (3, 7, 9, 8, 8, 3, 2, "same", 2)],
    ids=_case_id,
)
def test_phases_with_other_tiles_and_gpu_tiling(device, case):
    """A tuner's block (3 rows: blocks end inside a phase), and a GPU's local-memory tiles on
    whatever device there is (groups == 1; grouped gradients keep register blocks)."""
    batch, h, w, c, f, k, s, padding, groups = case
    graph = grad_input_graph(h, w, c, f, k, s, padding, groups)
    variant = {"algo": "phases", "MR": 3, "VW": 1, "NV": 1, "row_groups": 0}
    got, ref, launches, tol = run_both(graph, batch, device, variant)
    (main,) = [x for x in launches if x.kernel == "conv2d_grad_input_phases"]
    assert main.define_map["MR"] == 3
    assert_close(got, ref, tol)
    gpu = Target("gpu", device.compute_units, force_local_tiles=True)
    got, ref, launches, tol = run_both(graph, batch, device, None, gpu)
    assert_close(got, ref, tol)
    (main,) = [x for x in launches if x.kernel == "conv2d_grad_input_phases"]
    if device.kind != "gpu":
        assert (main.define_map.get("LOCAL_TILE") == 1) == (groups == 1)


def test_stride_with_dilation(device):
    """Strides and dilation together (not reachable from a spec: the layers refuse it): the
    taps of a phase are every S / gcd(S, D)-th, or none."""
    for dilation, strides in (((2, 3), (2, 2)), ((2, 1), (2, 3))):
        graph = grad_input_graph(9, 10, 3, 5, 3, strides, "same", dilation=dilation)
        got, ref, launches, tol = run_both(graph, 2, device, None)
        assert "conv2d_grad_input_phases" in kernels(launches)
        assert_close(got, ref, tol)


def test_stride_one_stays_direct():
    graph = grad_input_graph(7, 9, 5, 6, 3, 1, "same")
    plan = make_plan(graph, 2, Target())
    kernels = {x.kernel for x in plan.bindings["y"].launches}
    assert "conv2d_grad_input" in kernels and "conv2d_grad_input_phases" not in kernels


def test_phase_rows_cover_every_pixel_once():
    """The phases' pixels add up to the image, and blocks pad each phase separately."""
    for size, pad, stride in ((7, 1, 2), (8, 0, 3), (1, 1, 2), (2, 0, 3), (28, 0, 2)):
        counts = phase_pixels(size, pad, stride)
        assert sum(counts) == size and len(counts) == stride
    geo = conv_geometry(grad_input_graph(7, 9, 5, 6, 3, 2, "same").node("y").attrs,
                        (1, 7, 9, 5))
    # phases 4x5, 4x4, 3x5, 3x4 pixels at batch 3: 60, 48, 45, 36 rows
    assert phase_blocks(geo, 3, 8) == 8 + 6 + 6 + 5
