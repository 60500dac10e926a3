"""ONNX export of Keras 'same' padding against the rule written out here, not cnnc's (issue 25's
mutation check: moving the odd pixel before left all of test_onnx_export.py green, since
onnxruntime ran the pads cnnc computed and was compared with cnnc).

Keras' rule, from TensorFlow's documentation: out = ceil(in / stride); the total padding is
max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0), the smaller half before (top, left).
The reference pads with NumPy by that rule and slides the window by hand; onnxruntime runs the
exported file. The sizes give odd totals, where before and after differ.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx_helpers import nhwc, ort_outputs

import cnnc
from cnnc.testing.nets import chain


def keras_same(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _windows(x, k, stride, dilation, fill):
    """NHWC x padded by keras_same with `fill`, and its windows (n, oh, ow, kh, kw, c)."""
    (pt, pb), (pl, pr) = (keras_same(x.shape[1], k, stride, dilation),
                          keras_same(x.shape[2], k, stride, dilation))
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    span = (k - 1) * dilation + 1
    oh, ow = (xp.shape[1] - span) // stride + 1, (xp.shape[2] - span) // stride + 1
    return np.stack([np.stack([xp[:, i * stride:i * stride + span:dilation,
                                  j * stride:j * stride + span:dilation, :]
                               for j in range(ow)], 1) for i in range(oh)], 1)


def _export(graph, tmp_path, weights=None):
    model = cnnc.compile(graph, backend="numpy")
    if weights:
        model.set_weights(weights)
    path = tmp_path / "m.onnx"
    model.export_onnx(str(path))
    return path


def _pads(path, op_type):
    (node,) = [n for n in onnx.load(str(path)).graph.node if n.op_type == op_type]
    return next(list(a.ints) for a in node.attribute if a.name == "pads")


@pytest.mark.parametrize("h,w,k,s,d", [(7, 6, 3, 2, 1), (6, 9, 4, 1, 1), (7, 7, 2, 3, 1),
                                       (8, 5, 2, 1, 3)])
def test_exported_same_convolution_pads_as_keras(h, w, k, s, d, tmp_path):
    rng = np.random.default_rng(h * 10 + k)
    kernel = rng.standard_normal((k, k, 2, 3)).astype(np.float32)
    g = chain((h, w, 2), ("conv2d", 3, k, {"strides": s, "dilation_rate": d, "padding": "same",
                                           "use_bias": False}))
    path = _export(g, tmp_path, {"conv2d/kernel": kernel})
    (top, bottom), (left, right) = keras_same(h, k, s, d), keras_same(w, k, s, d)
    assert _pads(path, "Conv") == [top, left, bottom, right]
    x = rng.standard_normal((2, h, w, 2)).astype(np.float32)
    (got,) = ort_outputs(path, {g.inputs[0]: x.transpose(0, 3, 1, 2)})
    want = np.einsum("nijabc,abcf->nijf", _windows(x.astype(np.float64), k, s, d, 0.0), kernel)
    np.testing.assert_allclose(nhwc(got), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("h,w,k,s", [(7, 6, 2, 2), (5, 8, 3, 2)])
def test_exported_same_max_pooling_pads_as_keras(h, w, k, s, tmp_path):
    g = chain((h, w, 3), ("maxpool2d", k, {"strides": s, "padding": "same"}))
    path = _export(g, tmp_path)
    (top, bottom), (left, right) = keras_same(h, k, s), keras_same(w, k, s)
    assert _pads(path, "MaxPool") == [top, left, bottom, right]
    x = np.random.default_rng(h).standard_normal((2, h, w, 3)).astype(np.float32)
    (got,) = ort_outputs(path, {g.inputs[0]: x.transpose(0, 3, 1, 2)})
    np.testing.assert_array_equal(nhwc(got), _windows(x, k, s, 1, -np.inf).max(axis=(3, 4)))
