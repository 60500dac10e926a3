"""Keras' 'same' padding and floor pooling, checked against a reference that shares nothing
with cnnc (issue 25: flipping where cnnc puts the odd pixel left most tests green, since they
compared cnnc with itself or handed onnxruntime and PyTorch cnnc's own pads).

The rule, written out here from TensorFlow's documentation: out = ceil(in / stride); the total
padding is max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0), of which the smaller half
goes before (top, left) and the larger after. The reference pads the input with NumPy by that
rule and slides the window by hand ('valid' from there); PyTorch does the same with F.pad, where
it is installed. Both run on odd sizes, strides 1-3, dilations 1-2 and even and odd kernels.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import cnnc
from cnnc.testing.nets import chain


def keras_same(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def reference_conv(x, w, stride, dilation, padding):
    """NHWC x, HWIO w, zero padding by keras_same (or none), windows slid by hand."""
    n, h, wd, _ = x.shape
    kh, kw, _, f = w.shape
    if padding == "same":
        (pt, pb), (pl, pr) = keras_same(h, kh, stride, dilation), keras_same(wd, kw, stride,
                                                                            dilation)
    else:
        pt = pb = pl = pr = 0
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    span_h, span_w = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    oh = (xp.shape[1] - span_h) // stride + 1
    ow = (xp.shape[2] - span_w) // stride + 1
    y = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride: i * stride + span_h: dilation,
                       j * stride: j * stride + span_w: dilation, :]
            y[:, i, j, :] = np.einsum("nabc,abcf->nf", patch, w)
    return y


def reference_maxpool(x, k, stride, padding):
    n, h, wd, c = x.shape
    if padding == "same":
        (pt, pb), (pl, pr) = keras_same(h, k, stride), keras_same(wd, k, stride)
    else:
        pt = pb = pl = pr = 0
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
    oh, ow = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1  # floor
    y = np.empty((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            y[:, i, j] = xp[:, i * stride: i * stride + k, j * stride: j * stride + k].max((1, 2))
    return y


CONVS = [(h, w, k, s, d, p) for (h, w), k, s, d, p in itertools.product(
    [(7, 6), (5, 9)], [2, 3, 4], [1, 2, 3], [1, 2], ["same", "valid"])
    if not (s > 1 and d > 1)  # Keras refuses strides and dilation together
    and (k - 1) * d + 1 <= min(h, w)]


@pytest.mark.parametrize("h,w,k,s,d,padding", CONVS)
def test_conv2d_padding_and_shape(h, w, k, s, d, padding):
    rng = np.random.default_rng(h * 100 + k * 10 + s)
    x = rng.standard_normal((2, h, w, 3))
    kernel = rng.standard_normal((k, k, 3, 4))
    g = chain((h, w, 3), ("conv2d", 4, k, {"strides": s, "dilation_rate": d,
                                          "padding": padding, "use_bias": False}))
    model = cnnc.compile(g, backend="numpy", dtype="float64")
    model.set_weights({"conv2d/kernel": kernel})
    got = model.predict(x)
    want = reference_conv(x, kernel, s, d, padding)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("h,w,k,s,padding", [
    (h, w, k, s, p) for (h, w), k, s, p in itertools.product(
        [(7, 6), (5, 9), (4, 4)], [2, 3], [1, 2, 3], ["same", "valid"]) if k <= min(h, w)])
def test_maxpool_padding_and_floor(h, w, k, s, padding):
    x = np.random.default_rng(k * 10 + s).standard_normal((2, h, w, 3))
    g = chain((h, w, 3), ("maxpool2d", k, {"strides": s, "padding": padding}))
    got = cnnc.compile(g, backend="numpy", dtype="float64").predict(x)
    want = reference_maxpool(x, k, s, padding)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("h,w,k,s,d,padding", [c for c in CONVS if c[5] == "same"][::3])
def test_conv2d_same_against_pytorch(h, w, k, s, d, padding):
    torch = pytest.importorskip("torch")
    from torch.nn import functional as fn

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, h, w, 3))
    kernel = rng.standard_normal((k, k, 3, 4))
    (pt, pb), (pl, pr) = keras_same(h, k, s, d), keras_same(w, k, s, d)
    xt = fn.pad(torch.from_numpy(x).permute(0, 3, 1, 2), (pl, pr, pt, pb))
    yt = fn.conv2d(xt, torch.from_numpy(kernel).permute(3, 2, 0, 1), stride=s, dilation=d)
    g = chain((h, w, 3), ("conv2d", 4, k, {"strides": s, "dilation_rate": d,
                                          "padding": padding, "use_bias": False}))
    model = cnnc.compile(g, backend="numpy", dtype="float64")
    model.set_weights({"conv2d/kernel": kernel})
    np.testing.assert_allclose(model.predict(x), yt.permute(0, 2, 3, 1).numpy(), rtol=1e-10,
                               atol=1e-10)
