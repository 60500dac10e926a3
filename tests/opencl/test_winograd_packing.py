"""The Winograd GEMMs' packed operands on a CPU (kernels/winograd.cl: UPACK, VPACK, VBLK,
EPACK; winograd.py's gemm_packing and the kernel gradient's binding) against the NumPy reference
in float64: tile counts that are not multiples of the block's rows (the last block of V padded),
channels and filters that are not multiples of the vector width or of 16, batch 1 and 7, the
batch in chunks, and each register tile the tuner may offer on an AVX2 CPU; and which tiles
gemm_tiles offers for a device's registers.

A CPU target is given explicitly (the packed layouts are a CPU's), so these run the same code
on whatever device there is; tolerances as tests/opencl/test_winograd.py's.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_winograd import EPS32, assert_close, forward_graph, grad_input_graph, run_both
from test_winograd_grad_kernel import grad_kernel_graph

from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import registers_used
from cnnc.backends.opencl.winograd import gemm_tiles, grad_kernel_error_factor

AVX2 = Target("cpu", 2, native_vector=8)


def _launch(exe, kernel: str):
    return next(x for x in exe.plan.bindings["y"].launches if x.kernel == kernel)


# (batch, h, w, c, f, tile, chunk): tiles per batch 4 (5x7 image, F(4x4)) or 9 (F(2x2)), so
# 4, 28, 9 or 63 tiles against blocks of 3, 4 and 6 rows; channels 12 (vectors of 4) and 5
# (of 1); filters 24 (panels of 8), 32 (of 16) and 5.
PACKED = [
    (1, 5, 7, 12, 24, None, 0),
    (7, 5, 7, 12, 32, {"MR": 6, "VW": 8, "NV": 2}, 0),
    (7, 5, 7, 5, 32, {"MR": 3, "VW": 8, "NV": 2}, 5),
    (1, 5, 7, 5, 5, None, 0),
]


def _pid(case) -> str:
    batch, h, w, c, f, tile, chunk = case
    t = "default" if tile is None else f"{tile['MR']}x{tile['VW'] * tile['NV']}"
    return f"b{batch}-{h}x{w}x{c}-{f}-{t}-chunk{chunk}"


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("case", PACKED, ids=_pid)
def test_packed_forward_and_input_gradient(device, m, case):
    batch, h, w, c, f, tile, chunk = case
    variant = {"algo": "winograd", "wino_m": m, "wino_chunk": chunk}
    if tile is not None:
        variant["wino_tile"] = tile
    for graph in (forward_graph(h, w, c, f, "same", True, "relu"),
                  grad_input_graph(h, w, f, c, "same")):
        got, ref, k, exe = run_both(graph, batch, device, variant, AVX2)
        gemm = _launch(exe, "winograd_gemm").define_map
        inp = _launch(exe, "winograd_input").define_map
        filt = _launch(exe, "winograd_filter").define_map
        assert gemm["VPACK"] == gemm["MR"] == inp["VPACK"]
        assert gemm["UPACK"] == gemm["VW"] * gemm["NV"] == filt["UPACK"]
        assert gemm["VPACK_C"] == inp["VPACK_C"] == inp["VW"]
        assert_close(got, ref, k, m)


# (batch, h, w, c, f, tile): channels 12 and 5 in blocks of the input's vectors (4, 1) against
# blocks of 6 and 4 rows (a block straddles two), filters 24 and 32 in panels of 8 and 16.
GRAD_PACKED = [
    (1, 5, 7, 12, 24, None),
    (7, 5, 7, 12, 32, {"MR": 6, "VW": 8, "NV": 2}),
    (7, 6, 5, 5, 32, None),
]


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("case", GRAD_PACKED, ids=lambda c: "x".join(map(str, c[:5])))
def test_packed_kernel_gradient(device, m, case):
    batch, h, w, c, f, tile = case
    variant = {"algo": "winograd", "wino_m": m}
    if tile is not None:
        variant["wino_tile"] = tile
    graph = grad_kernel_graph(h, w, c, f, "same")
    got, ref, _, exe = run_both(graph, batch, device, variant, AVX2)
    gemm = _launch(exe, "winograd_grad_gemm").define_map
    assert gemm["VBLK"] == _launch(exe, "winograd_input").define_map["VW"]
    assert gemm["EPACK"] == gemm["VW"] * gemm["NV"] == _launch(exe, "winograd_dy").define_map[
        "EPACK"]
    scale = max(np.abs(ref).max(), 1.0)
    tol = 2 * grad_kernel_error_factor({"wino_m": m}) * np.sqrt(batch * h * w) * EPS32 * scale
    assert np.abs(got.astype(np.float64) - ref).max() <= tol


def test_gpu_targets_keep_the_plain_layout(device):
    """A GPU's neighbouring work-items read neighbouring floats of the plain layout: no
    packing there, with local tiles (forward) or without (kernel gradient)."""
    gpu = Target("gpu", device.compute_units, force_local_tiles=True)
    graph = forward_graph(5, 7, 12, 24, "same", True, "relu")
    got, ref, k, exe = run_both(graph, 3, device, {"algo": "winograd", "wino_m": 4}, gpu)
    assert _launch(exe, "winograd_gemm").define_map["UPACK"] == 0
    assert _launch(exe, "winograd_gemm").define_map["VPACK"] == 0
    assert_close(got, ref, k, 4)
    graph = grad_kernel_graph(5, 7, 12, 24, "same")
    _, _, _, exe = run_both(graph, 3, device, {"algo": "winograd", "wino_m": 4}, gpu)
    assert _launch(exe, "winograd_grad_gemm").define_map["EPACK"] == 0


def test_gemm_tiles_fit_the_registers():
    """On AVX2 (16 registers of 8 floats), 6 rows of 16 columns are the most that fit beside the
    default 4 x 16; on AVX-512 (32 of 16), 8 and 4 rows of one vector beside the default 8 x 32.
    Every tile offered fits the registers and divides the columns."""
    assert gemm_tiles(128, AVX2) == [None, {"MR": 6, "VW": 8, "NV": 2}]
    avx512 = Target("cpu", 2, native_vector=16)
    assert gemm_tiles(256, avx512) == [None, {"MR": 8, "VW": 16, "NV": 1},
                                       {"MR": 4, "VW": 16, "NV": 1}]
    for target in (AVX2, avx512):
        for cols in (16, 48, 256):
            for tile in gemm_tiles(cols, target)[1:]:
                assert registers_used(tile, target) <= target.vector_registers
                assert cols % (tile["VW"] * tile["NV"]) == 0
    assert gemm_tiles(24, AVX2) == [None]
