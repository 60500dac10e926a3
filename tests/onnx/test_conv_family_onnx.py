"""ONNX export and import of the resampling and transposed-convolution layers (cnnc/ir/
resample.py, conv_transpose.py): each op case holding them written as ONNX, checked by
onnx.checker, run in onnxruntime against cnnc, and read back as an equal graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx_helpers import RTOL, nhwc, ort_outputs, relative_error
from op_cases_module import op_cases

import cnnc
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
    model = _trained_like(cnnc.compile(graph))
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
        np.testing.assert_allclose(cnnc.compile(back).predict(x), got, rtol=1e-5, atol=1e-6)
        return
    assert back == graph
    np.testing.assert_array_equal(cnnc.compile(back).predict(x), got)


def test_there_are_cases_for_every_new_op():
    seen = {n.op for c in CASES for n in c.values[0].nodes}
    assert NEW_OPS <= seen
