"""The ONNX importer's dense kernel (onnx_ops.dense_kernel): Gemm's and MatMul's B, transposed,
scaled and its rows reordered in one pass over tiles, equals the definition computed the plain
way, on shapes that cross the tiles' edges."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.frontend.onnx_ops import KERNEL_TILE, dense_kernel


def _nchw_flatten_order(c: int, h: int, w: int) -> np.ndarray:
    """ONNX's column (c, y, x) of a flattened NCHW tensor -> cnnc's NHWC column (y, x, c)."""
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((yy * w + xx) * c + cc).reshape(-1)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("reordered", [False, True])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_dense_kernel_is_the_reordered_scaled_product_operand(transposed, reordered, scale):
    c, h, w, units = 37, 3, 5, KERNEL_TILE + 45  # features 555: two tiles and a partial one
    rng = np.random.default_rng(0)
    features = c * h * w
    b = rng.standard_normal((units, features) if transposed else (features, units),
                            dtype=np.float32)
    order = _nchw_flatten_order(c, h, w) if reordered else None
    kernel = b.T if transposed else b
    want = np.empty((features, units), np.float32)
    want[order if reordered else slice(None)] = kernel * np.float32(scale)
    got = dense_kernel(b, order, transposed, scale)
    assert got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    if reordered:  # hand-worked: ONNX column (c=1, y=0, x=0) is NHWC column 1
        assert np.array_equal(got[1], kernel[h * w] * np.float32(scale))
