"""The Winograd F(m x m, 3 x 3) transform matrices (cnnc/backends/opencl/winograd.py), in NumPy
alone: a whole convolution through them equals direct convolution to float64 rounding, and their
float32 error stays within `winograd_error_factor` of a direct float32 convolution's."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.opencl.winograd import (
    GRAD_KERNEL_MS,
    WINO7_POINTS,
    WINO_MS,
    cook_toom,
    transform_matrices,
    winograd_error_factor,
)


def direct_conv(x: np.ndarray, w: np.ndarray, pad: int) -> np.ndarray:
    """y[n, i, j, f] = sum x[n, i + a - pad, j + b - pad, c] w[a, b, c, f] (zero outside)."""
    n, h, wd, _c = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh, ow = h + 2 * pad - 2, wd + 2 * pad - 2
    y = np.zeros((n, oh, ow, w.shape[3]), x.dtype)
    for a in range(3):
        for b in range(3):
            y += xp[:, a : a + oh, b : b + ow, :] @ w[a, b]
    return y


def winograd_conv(x: np.ndarray, w: np.ndarray, pad: int, m: int) -> np.ndarray:
    """The same convolution as the kernels compute it: tiles of m x m outputs from (m+2)^2
    input patches, transforms and the per-point GEMMs in x's dtype."""
    bt, g, at = (a.astype(x.dtype) for a in transform_matrices(m))
    t = m + 2
    n, h, wd, c = x.shape
    oh, ow = h + 2 * pad - 2, wd + 2 * pad - 2
    th, tw = -(-oh // m), -(-ow // m)
    xp = np.zeros((n, th * m + 2, tw * m + 2, c), x.dtype)
    xp[:, pad : pad + h, pad : pad + wd] = x[:, : th * m + 2 - pad, : tw * m + 2 - pad]
    u = np.einsum("ia,abcf,jb->ijcf", g, w, g)  # (t, t, C, F)
    y = np.zeros((n, th * m, tw * m, w.shape[3]), x.dtype)
    for i in range(th):
        for j in range(tw):
            d = xp[:, i * m : i * m + t, j * m : j * m + t, :]  # (n, t, t, C)
            v = np.einsum("ia,nabc,jb->nijc", bt, d, bt)
            prod = np.einsum("nijc,ijcf->nijf", v, u)
            y[:, i * m : (i + 1) * m, j * m : (j + 1) * m] = np.einsum(
                "ia,nabf,jb->nijf", at, prod, at
            )
    return y[:, :oh, :ow]


@pytest.mark.parametrize("m", WINO_MS)
def test_one_tile_is_exact_correlation(m):
    bt, g, at = transform_matrices(m)
    rng = np.random.default_rng(m)
    d, k = rng.standard_normal((m + 2, m + 2)), rng.standard_normal((3, 3))
    y = at @ ((g @ k @ g.T) * (bt @ d @ bt.T)) @ at.T
    direct = np.array([[np.sum(d[i : i + 3, j : j + 3] * k) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(y, direct, rtol=0, atol=1e-12)


def test_cook_toom_gives_the_published_f4():
    """The construction F(7x7)'s matrices come from, at F(4x4)'s points, gives Lavin & Gray's
    F(4x4) matrices (up to G's scaling by B^T's and A^T's integer rows and columns: the
    products G[j] B^T[j] and A^T[:, j] G[j] agree)."""
    bt, g, at = (np.array(x, np.float64) for x in cook_toom((0, 1, -1, 2, -2), 4))
    bt4, g4, at4 = transform_matrices(4)
    np.testing.assert_allclose(bt, bt4, atol=0)
    np.testing.assert_allclose(at[:, :, None] * g[None], at4[:, :, None] * g4[None], atol=1e-15)


def test_f7_points_and_integer_transforms():
    """F(7x7)'s B^T and A^T hold integers only (exact in float32: G alone holds rounded
    constants), at the documented points."""
    bt, _g, at = cook_toom(WINO7_POINTS, 7)
    assert all(v.denominator == 1 for row in (*bt, *at) for v in row)
    assert len(WINO7_POINTS) == 8 and len(set(WINO7_POINTS)) == 8


def test_kernel_sums_are_the_script_output():
    """winograd.cl's F(7x7) macros are exactly scripts/winograd_sums.py's text (generated from
    cook_toom), so the float64 checks here check what the kernel computes."""
    import runpy
    from pathlib import Path

    root = Path(__file__).parents[2]
    sums = runpy.run_path(str(root / "scripts" / "winograd_sums.py"))["sums"]()
    source = (root / "kernels" / "winograd.cl").read_text()
    block = source.split("#elif WINO_M == 7\n", 1)[1].split("\n#else\n", 1)[0]
    assert block == sums


@pytest.mark.parametrize("m", WINO_MS)
@pytest.mark.parametrize("hw,pad", [((5, 7), 1), ((1, 1), 1), ((3, 3), 0), ((6, 4), 1),
                                    ((14, 14), 1), ((10, 9), 0)])
def test_whole_convolution_float64(m, hw, pad):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *hw, 3))
    w = rng.standard_normal((3, 3, 3, 5))
    np.testing.assert_allclose(winograd_conv(x, w, pad, m), direct_conv(x, w, pad), atol=1e-12)


def measured_error_factor(m: int, c: int, trials: int, seed: int = 0) -> float:
    """The largest ratio, over `trials` random N(0, 1) problems of C = c channels, of the float32
    Winograd convolution's max abs error to the float32 direct convolution's (both against
    float64)."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(trials):
        x = rng.standard_normal((1, 8, 8, c))
        w = rng.standard_normal((3, 3, c, 8)) / np.sqrt(9 * c)
        exact = direct_conv(x, w, 1)
        x32, w32 = x.astype(np.float32), w.astype(np.float32)
        direct = np.abs(direct_conv(x32, w32, 1) - exact).max()
        wino = np.abs(winograd_conv(x32, w32, 1, m) - exact).max()
        worst = max(worst, wino / direct)
    return worst


@pytest.mark.parametrize("m", WINO_MS)
def test_float32_error_within_stated_factor(m):
    factor = measured_error_factor(m, c=64, trials=5)
    assert 1.0 <= factor <= winograd_error_factor(m), factor


def test_larger_tiles_lose_more_precision():
    assert measured_error_factor(4, 64, 5) > measured_error_factor(2, 64, 5)
    assert measured_error_factor(7, 64, 5) > measured_error_factor(4, 64, 5)
    assert winograd_error_factor(7) > winograd_error_factor(4) > winograd_error_factor(2)


# ---------------------------------------------------------------- the kernel gradient


def direct_grad_kernel(x: np.ndarray, dy: np.ndarray, pad: int) -> np.ndarray:
    """dW[a, b, c, f] = sum over n, i, j of x[n, i + a - pad, j + b - pad, c] dy[n, i, j, f]."""
    c = x.shape[3]
    oh, ow = dy.shape[1:3]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.zeros((3, 3, c, dy.shape[3]), x.dtype)
    for a in range(3):
        for b in range(3):
            window = xp[:, a : a + oh, b : b + ow, :].reshape(-1, c)
            out[a, b] = window.T @ dy.reshape(-1, dy.shape[3])
    return out


def winograd_grad_kernel(x: np.ndarray, dy: np.ndarray, pad: int, m: int) -> np.ndarray:
    """dW as winograd.cl computes it, F(3x3, m x m): over the tiles of dy's grid,
    G^T [(A e A^T) * (B^T d B)] G with d the (m+2)^2 input patch, e the m x m tile of dy (zero
    past its edge), A = (A^T)^T; sums in x's dtype."""
    bt, g, at = (a.astype(x.dtype) for a in transform_matrices(m))
    t = m + 2
    n, h, wd, c = x.shape
    oh, ow = dy.shape[1:3]
    th, tw = -(-oh // m), -(-ow // m)
    xp = np.zeros((n, th * m + 2, tw * m + 2, c), x.dtype)
    xp[:, pad : pad + h, pad : pad + wd] = x[:, : th * m + 2 - pad, : tw * m + 2 - pad]
    dyp = np.zeros((n, th * m, tw * m, dy.shape[3]), x.dtype)
    dyp[:, :oh, :ow] = dy
    acc = np.zeros((t, t, c, dy.shape[3]), x.dtype)
    for i in range(th):
        for j in range(tw):
            v = np.einsum("ia,nabc,jb->nijc", bt, xp[:, i * m : i * m + t, j * m : j * m + t], bt)
            e = np.einsum("ai,nabf,bj->nijf", at, dyp[:, i * m : (i + 1) * m,
                                                       j * m : (j + 1) * m], at)
            acc += np.einsum("nijc,nijf->ijcf", v, e)
    return np.einsum("ia,ijcf,jb->abcf", g, acc, g)


@pytest.mark.parametrize("m", GRAD_KERNEL_MS)
@pytest.mark.parametrize("hw,pad", [((5, 7), 1), ((1, 1), 1), ((4, 3), 0), ((6, 6), 1)])
def test_grad_kernel_float64(m, hw, pad):
    """The dual algorithm: the forward pass's B^T on the input, A on dy, G^T on the sums."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, *hw, 3))
    oh, ow = hw[0] + 2 * pad - 2, hw[1] + 2 * pad - 2
    dy = rng.standard_normal((2, oh, ow, 4))
    np.testing.assert_allclose(winograd_grad_kernel(x, dy, pad, m),
                               direct_grad_kernel(x, dy, pad), atol=1e-11)


@pytest.mark.parametrize("m", GRAD_KERNEL_MS)
def test_grad_kernel_float32_error_within_stated_factor(m):
    """winograd.py's _GRAD_KERNEL_ERROR_FACTORS bound the measured ratio to the direct kernel
    gradient's float32 error (16 and 64 channels; measured 0.5-1.3x and 3.3-7.7x)."""
    from cnnc.backends.opencl.winograd import grad_kernel_error_factor

    rng = np.random.default_rng(3)
    worst = 0.0
    for c in (16, 64):
        for _ in range(3):
            x, dy = rng.standard_normal((4, 12, 12, c)), rng.standard_normal((4, 12, 12, 8))
            exact = direct_grad_kernel(x, dy, 1)
            x32, dy32 = x.astype(np.float32), dy.astype(np.float32)
            direct = np.abs(direct_grad_kernel(x32, dy32, 1) - exact).max()
            wino = np.abs(winograd_grad_kernel(x32, dy32, 1, m) - exact).max()
            worst = max(worst, wino / direct)
    assert worst <= grad_kernel_error_factor({"wino_m": m}), worst
