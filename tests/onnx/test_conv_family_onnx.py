"""ONNX export and import of the resampling and transposed-convolution layers (cnnc/ir/
resample.py, conv_transpose.py): each op case holding them written as ONNX, checked by
onnx.checker, run in onnxruntime against cnnc, and read back as an equal graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx_helpers import (
    RTOL,
    check_against_ort,
    make_model,
    nhwc,
    ort_outputs,
    relative_error,
    save,
)
from op_cases_module import op_cases

import cnnc
from cnnc.errors import CnncError
from cnnc.frontend.spec import load_spec

NEW_OPS = {"conv2d_transpose", "upsampling2d", "cropping2d", "separable_conv2d"}


def _cases():
    out = []
    for case in op_cases().CASES:
        graph = load_spec(case.spec())
        if any(n.op in NEW_OPS for n in graph.nodes):
            out.append(pytest.param(graph, id=case.name))
    return out


CASES = _cases()


def _trained_like(model, seed=3):
    rng = np.random.default_rng(seed)
    weights = model.get_weights()
    for name, value in weights.items():
        if name.endswith("bias"):
            weights[name] = rng.uniform(-0.5, 0.5, value.shape).astype(np.float32)
    model.set_weights(weights)
    return model


@pytest.mark.parametrize("graph", CASES)
def test_export_matches_onnxruntime_and_reads_back_equal(graph, tmp_path):
    model = _trained_like(cnnc.compile(graph, backend="numpy"))
    path = tmp_path / "m.onnx"
    model.export_onnx(str(path))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = np.random.default_rng(0).random((2, *graph.shape_of(graph.inputs[0])[1:]),
                                        dtype=np.float32)
    (want,) = ort_outputs(path, {graph.inputs[0]: x.transpose(0, 3, 1, 2)})
    got = model.predict(x)
    assert relative_error(got, nhwc(want)) <= RTOL
    back = cnnc.load_spec(path)
    if any(n.op == "separable_conv2d" for n in graph.nodes):
        # read back as its parts, a grouped conv2d and a 1x1 one: the same sums
        assert [n.op for n in back.nodes].count("conv2d") == 2 * len(graph.nodes[1:])
        np.testing.assert_allclose(cnnc.compile(back, backend="numpy").predict(x), got,
                                   rtol=1e-5, atol=1e-6)
        return
    assert back == graph
    np.testing.assert_array_equal(cnnc.compile(back, backend="numpy").predict(x), got)


def test_there_are_cases_for_every_new_op():
    seen = {n.op for c in CASES for n in c.values[0].nodes}
    assert NEW_OPS <= seen


# ---- models written with onnx.helper: forms PyTorch does not write, and refusals

def _conv_transpose_model(tmp_path, w_shape=(3, 4, 3, 3), **attrs):
    rng = np.random.default_rng(1)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="up", **attrs)
    model = make_model([node], {"x": ["N", w_shape[0], 5, 4]}, ["y"],
                       {"w": rng.standard_normal(w_shape).astype(np.float32),
                        "b": rng.standard_normal(w_shape[1] * attrs.get("group", 1)).astype(
                            np.float32)})
    return save(model, tmp_path / "m.onnx")


@pytest.mark.parametrize("attrs", [
    {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
    {"strides": [2, 2], "auto_pad": "SAME_LOWER"},
    {"strides": [2, 1], "auto_pad": "VALID", "output_padding": [1, 0]},
    {"strides": [2, 2], "pads": [1, 0, 2, 1]},
    {"strides": [3, 2], "output_shape": [14, 9]},
    {"dilations": [2, 1], "pads": [1, 1, 1, 1]},
], ids=lambda a: str(sorted(a.items())))
def test_conv_transpose_forms_match_onnxruntime(attrs, tmp_path):
    path = _conv_transpose_model(tmp_path, **attrs)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4)).astype(np.float32)
    graph = check_against_ort(path, x)
    assert "conv2d_transpose" in {n.op for n in graph.nodes}


def _resize_model(tmp_path, scales=None, sizes=None, opset=17, **attrs):
    inits = {}
    inputs = ["x", ""]
    if scales is not None:
        inits["scales"] = np.array(scales, np.float32)
        inputs.append("scales")
    else:
        inputs.append("")
    if sizes is not None:
        inits["sizes"] = np.array(sizes, np.int64)
        inputs.append("sizes")
    node = helper.make_node("Resize", inputs, ["y"], name="resize", **attrs)
    model = make_model([node], {"x": ["N", 2, 3, 4]}, ["y"], inits, opset=opset)
    return save(model, tmp_path / "r.onnx")


@pytest.mark.parametrize("kwargs", [
    {"scales": [1, 1, 2, 3], "mode": "nearest", "coordinate_transformation_mode": "asymmetric",
     "nearest_mode": "floor"},
    {"sizes": [6, 8], "axes": [2, 3], "mode": "nearest", "opset": 18,
     "coordinate_transformation_mode": "half_pixel", "nearest_mode": "round_prefer_ceil"},
    {"scales": [1, 1, 3, 2], "mode": "linear", "coordinate_transformation_mode": "half_pixel"},
    {"scales": [1, 1, 2, 1], "mode": "linear",
     "coordinate_transformation_mode": "pytorch_half_pixel", "opset": 13},
    {"scales": [2, 3], "axes": [2, 3], "mode": "linear", "opset": 18},
], ids=str)
def test_resize_forms_match_onnxruntime(kwargs, tmp_path):
    path = _resize_model(tmp_path, **kwargs)
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 4)).astype(np.float32)
    graph = check_against_ort(path, x)
    assert [n.op for n in graph.nodes] == ["input", "upsampling2d"]


@pytest.mark.parametrize("path_of,message", [
    (lambda p: _conv_transpose_model(p, (4, 2, 3, 3), group=2),
     r"'up' \(ConvTranspose\): group=2"),
    (lambda p: _resize_model(p, scales=[1, 1, 1.5, 2], mode="nearest"),
     r"'resize' \(Resize\): scales=.* are not integer factors"),
    (lambda p: _resize_model(p, scales=[1, 1, 2, 2], mode="linear",
                             coordinate_transformation_mode="align_corners"),
     "align_corners"),
    (lambda p: _resize_model(p, scales=[1, 1, 2, 2], mode="cubic"), "mode='cubic'"),
    (lambda p: _resize_model(p, scales=[1, 2, 2, 2], mode="nearest",
                             coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
     "channel axis"),
], ids=["group", "fractional", "align_corners", "cubic", "channels"])
def test_inexpressible_forms_are_refused_naming_the_node(path_of, message, tmp_path):
    with pytest.raises(CnncError, match=message):
        cnnc.load_spec(path_of(tmp_path))
