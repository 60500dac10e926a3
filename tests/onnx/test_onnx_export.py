"""Export: every example spec written as ONNX (checked with onnx.checker, full check), run in
onnxruntime on random inputs and compared with cnnc's NumPy and OpenCL outputs; the round trip
spec -> ONNX -> cnnc gives an equal graph, equal weights and equal outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_helpers import RTOL, nhwc, ort_outputs, relative_error

import cnnc
from cnnc.cli import main
from cnnc.errors import CnncError
from cnnc.frontend.spec import bundled_specs
from cnnc.ir.activations import ACTIVATIONS

SPECS = sorted({Path(name).stem for name in bundled_specs()})


def trained_like(model, seed=3):
    """Weights as training leaves them: batch-norm statistics and affine terms off their
    initial ones and zeros, so that exporting them wrongly would show."""
    rng = np.random.default_rng(seed)
    weights = model.get_weights()
    for name, value in weights.items():
        if name.endswith(("gamma", "moving_variance")):
            weights[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
        elif name.endswith(("beta", "moving_mean", "bias")):
            weights[name] = rng.uniform(-0.5, 0.5, value.shape).astype(np.float32)
    model.set_weights(weights)
    return model


def inputs(graph, n=3, seed=0):
    shape = graph.shape_of(graph.inputs[0])[1:]
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def onnx_input(x, layout):
    return x.transpose(0, 3, 1, 2) if layout == "nchw" and x.ndim == 4 else x


@pytest.mark.parametrize("spec", SPECS)
def test_every_example_spec_matches_onnxruntime(spec, backend, tmp_path):
    graph = cnnc.load_spec(spec)
    model = trained_like(cnnc.compile(graph, backend=backend))
    path = tmp_path / f"{spec}.onnx"
    model.export_onnx(str(path))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = inputs(graph)
    (want,) = ort_outputs(path, {graph.inputs[0]: onnx_input(x, "nchw")})
    err = relative_error(model.predict(x), nhwc(want))
    assert err <= RTOL, f"{spec} on {backend}: relative error {err:.2e}"


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_round_trip_gives_an_equal_graph_and_equal_outputs(spec, layout, tmp_path):
    graph = cnnc.load_spec(spec)
    model = trained_like(cnnc.compile(graph, backend="numpy"))
    path = tmp_path / f"{spec}.onnx"
    model.export_onnx(str(path), layout=layout)
    back = cnnc.load_spec(path)
    assert back == graph  # nodes, names, arguments, parameters, outputs and train settings
    weights = model.get_weights()
    assert set(back.given_weights) == set(weights)
    for name, value in weights.items():
        np.testing.assert_array_equal(back.given_weights[name], value, err_msg=name)
    x = inputs(graph)
    np.testing.assert_array_equal(cnnc.compile(back, backend="numpy").predict(x), model.predict(x))
    (want,) = ort_outputs(path, {graph.inputs[0]: onnx_input(x, layout)})
    assert relative_error(model.predict(x), nhwc(want) if layout == "nchw" else want) <= RTOL


# Every layer form ONNX cannot state by itself (and the metadata keeps): explicit strides equal
# to the pool size, 'same' on a window needing no padding, batch norm without gamma or beta, a
# channel axis written 3, relus with parameters (relu6's and leaky_relu's too), a dropout seed;
# plus zero padding and a relu6 activation.
EVERY_FORM = """
network every_form
input 9x10x3
a: conv2d 6 1 same leaky_relu
zero_padding2d ((1, 0), (2, 1))
b: conv2d 6 3 strides=2 relu6 use_bias=false
mp: maxpool2d 2 strides=2
c: conv2d(a) 6 3 strides=4x3
bn: batchnorm(mp) center=false
bn2: batchnorm(c) scale=false epsilon=0.01 momentum=0.9
cat: concatenate(bn, bn2) axis=3
ReLU max_value=2.5
LeakyReLU 0.3
ReLU
ReLU max_value=6
LeakyReLU 0.2
ThresholdedReLU 0.1
avgpool2d 2 strides=1 same
depthwise_conv2d 2 depth_multiplier=2 elu
flatten
dropout 0.25 seed=7
dense 8 sigmoid use_bias=false
d: dense 5
activation softmax
"""


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_round_trip_of_every_layer_form(layout, tmp_path):
    graph = cnnc.load_spec(EVERY_FORM)
    model = trained_like(cnnc.compile(graph, backend="numpy"))
    path = tmp_path / "every.onnx"
    model.export_onnx(str(path), layout=layout)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    back = cnnc.load_spec(path)
    assert back == graph
    x = inputs(graph)
    np.testing.assert_array_equal(cnnc.compile(back, backend="numpy").predict(x), model.predict(x))
    (want,) = ort_outputs(path, {graph.inputs[0]: onnx_input(x, layout)})
    assert relative_error(model.predict(x), want) <= RTOL


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_activation_of_the_table_round_trips_or_is_refused_by_name(act, tmp_path):
    """As a layer of its own and fused into a dense layer: exported by its row of the table
    (its ONNX operator, or the Keras ReLU it equals), read back equal; an activation that ONNX
    has no operator for is refused by name."""
    graph = cnnc.load_spec(f"input 2x3x4\na: activation {act}\nflatten\ndense 3 {act}\n")
    model = trained_like(cnnc.compile(graph, backend="numpy"))
    path = tmp_path / "act.onnx"
    row = ACTIVATIONS[act]
    if row.onnx is None and row.relu is None and act not in ("linear", "softmax"):
        with pytest.raises(CnncError, match=f"activation '{act}' has no ONNX export"):
            model.export_onnx(str(path))
        return
    model.export_onnx(str(path))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    back = cnnc.load_spec(path)
    if act != "linear":  # Identity reads back as no layer at all
        assert back == graph
    x = inputs(graph) * 4 - 2  # both sides of 0, and past relu6's cap after the dense layer
    (want,) = ort_outputs(path, {graph.inputs[0]: onnx_input(x, "nchw")})
    assert relative_error(model.predict(x), want) <= RTOL


def test_a_relu_with_two_parameters_is_refused_by_name(tmp_path):
    graph = cnnc.load_spec("input 4x4x1\nflatten\nt: ReLU threshold=0.5 negative_slope=0.1\n")
    with pytest.raises(CnncError, match="t: a relu with more than one of"):
        cnnc.compile(graph, backend="numpy").export_onnx(str(tmp_path / "m.onnx"))


@pytest.mark.parametrize("spec", ["resnet_mini", "fashion-plus", "mobilenet_mini"])
def test_fold_bn_folds_into_the_layer_before_and_keeps_the_outputs(spec, tmp_path):
    graph = cnnc.load_spec(spec)
    model = trained_like(cnnc.compile(graph, backend="numpy"))
    path = tmp_path / "folded.onnx"
    model.export_onnx(str(path), fold_bn=True)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    bns = sum(n.op == "batchnorm" for n in graph.nodes)
    assert ops.count("BatchNormalization") < bns
    # the batch norms the inference pipeline leaves are the ones the export leaves
    assert ops.count("BatchNormalization") == sum(n.op == "batchnorm" for n in model.graph.nodes)
    back = cnnc.load_spec(path)
    assert sum(n.op == "batchnorm" for n in back.nodes) == ops.count("BatchNormalization")
    x = inputs(graph)
    want = model.predict(x)
    assert relative_error(cnnc.compile(back, backend="numpy").predict(x), want) <= RTOL
    (ort,) = ort_outputs(path, {graph.inputs[0]: onnx_input(x, "nchw")})
    assert relative_error(ort, want) <= RTOL


@pytest.mark.parametrize("opset", [13, 21])
def test_other_opsets(opset, tmp_path):
    graph = cnnc.load_spec("inception_mini")
    model = cnnc.compile(graph, backend="numpy")
    path = tmp_path / "m.onnx"
    model.export_onnx(str(path), opset=opset)
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == opset
    onnx.checker.check_model(proto, full_check=True)
    x = inputs(graph)
    (want,) = ort_outputs(path, {"input_layer": onnx_input(x, "nchw")})
    assert relative_error(model.predict(x), want) <= RTOL


def test_names_keep_the_layer_names(tmp_path):
    graph = cnnc.load_spec("resnet_mini")
    cnnc.compile(graph, backend="numpy").export_onnx(str(tmp_path / "m.onnx"))
    proto = onnx.load(str(tmp_path / "m.onnx"))
    node_names = {n.name for n in proto.graph.node}
    assert {n.name for n in graph.nodes if n.op != "input"} <= node_names
    assert {s.name for s in graph.weights} <= {t.name for t in proto.graph.initializer}
    assert [o.name for o in proto.graph.output] == list(graph.outputs)
    assert proto.producer_name == "cnnc" and proto.graph.name == "resnet_mini"


def test_cli_export_with_trained_weights(tmp_path, capsys):
    graph = cnnc.load_spec("lenet5")
    model = trained_like(cnnc.compile(graph, backend="numpy"))
    model.save_weights(str(tmp_path / "w.safetensors"))
    out = tmp_path / "lenet5.onnx"
    assert main(["export", "lenet5", "--weights", str(tmp_path / "w.safetensors"), "-o",
                 str(out), "--layout", "nhwc", "--opset", "18"]) == 0
    text = capsys.readouterr().out
    assert "lenet5" in text and "opset 18" in text and "(batch, 28, 28, 1)" in text
    x = inputs(graph)
    (want,) = ort_outputs(out, {"input_layer": x})
    assert relative_error(model.predict(x), want) <= RTOL


@pytest.mark.parametrize("argv, needle", [
    (["--opset", "7"], "opset must be an integer from 13"),
    (["--weights", "missing.safetensors"], "no weights file"),
])
def test_cli_export_errors_exit_2(argv, needle, tmp_path, capsys):
    assert main(["export", "lenet5", "-o", str(tmp_path / "x.onnx"), *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_cli_export_into_a_missing_folder(tmp_path, capsys):
    assert main(["export", "lenet5", "-o", str(tmp_path / "no" / "x.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_without_the_onnx_package_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(CnncError, match=r"needs the 'onnx' package.*cnnc\[onnx\]"):
        cnnc.load_spec(tmp_path / "model.onnx")
    with pytest.raises(CnncError, match="cnnc\\[onnx\\]"):
        cnnc.compile("lenet5", backend="numpy").export_onnx(str(tmp_path / "m.onnx"))
