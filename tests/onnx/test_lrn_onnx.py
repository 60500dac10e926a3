"""ONNX import and export of local response normalisation (cnnc/ir/lrn.py): LRN nodes of
several sizes, constants and odd channel counts against onnxruntime on NumPy and OpenCL, round
trips checked by onnx.checker and onnxruntime, the refusals, and PyTorch's LocalResponseNorm
chain (cnnc/frontend/onnx_lrn.py) built by hand and, under -m slow, exported by PyTorch
(skipped without torch)."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx_helpers import RTOL, check_against_ort, make_model, ort_outputs, randn, relative_error
from onnx_helpers import save as save_model

import cnnc
from cnnc.errors import CnncError

# (size, alpha, beta, bias, channels): ONNX's defaults, AlexNet's (size 5, 1e-4), and constants
# far from them so the divisors matter; windows of 1, 3 and 5, one wider than 3 channels.
LRN_CASES = [
    (1, 1.0, 0.5, 2.0, 4),
    (3, 2.0, 0.75, 1.0, 7),
    (5, 1e-4, 0.75, 1.0, 9),
    (5, 3.0, 1.5, 0.5, 3),
]


def _lrn_model(size, alpha, beta, bias, channels, h=4, w=3):
    node = helper.make_node("LRN", ["x"], ["y"], name="norm1", size=size, alpha=alpha, beta=beta,
                            bias=bias)
    return make_model([node], {"x": ["N", channels, h, w]}, ["y"])


@pytest.mark.parametrize("size,alpha,beta,bias,channels", LRN_CASES)
def test_lrn_import_matches_onnxruntime(size, alpha, beta, bias, channels, backend, tmp_path):
    path = save_model(_lrn_model(size, alpha, beta, bias, channels), tmp_path / "lrn.onnx")
    graph = check_against_ort(path, randn(2, channels, 4, 3, seed=size, scale=3.0),
                              backend=backend)
    (node,) = [n for n in graph.nodes if n.op == "lrn"]
    assert node.name == "norm1"
    assert node.attrs["size"] == size and node.attrs["bias"] == pytest.approx(bias)


def test_lrn_defaults_are_onnx_s(tmp_path):
    node = helper.make_node("LRN", ["x"], ["y"], size=3)
    path = save_model(make_model([node], {"x": ["N", 5, 2, 2]}, ["y"]), tmp_path / "d.onnx")
    graph = check_against_ort(path, randn(1, 5, 2, 2, scale=40.0))
    (lrn,) = [n for n in graph.nodes if n.op == "lrn"]
    assert (lrn.attrs["alpha"], lrn.attrs["beta"], lrn.attrs["bias"]) == (1e-4, 0.75, 1.0)


# Rank 4 (AlexNet's), an lrn of a dense layer's rows (rank 2) and a 1x1 map; odd channels.
SPEC = """
network lrns
input 6x5x7
conv2d 7 3 same relu
n1: lrn 5 alpha=2.0 beta=0.75 bias=1.5
conv2d 5 1
n2: lrn 3 alpha=0.5 beta=1.2
n3: lrn 1 alpha=1.0 beta=0.5 bias=3.0
global_avgpool2d
dense 9
n4: lrn 3 alpha=4.0
dense 3
"""


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_round_trip_matches_onnxruntime_and_gives_an_equal_graph(layout, tmp_path):
    graph = cnnc.load_spec(SPEC)
    model = cnnc.compile(graph)
    path = tmp_path / "lrns.onnx"
    model.export_onnx(str(path), layout=layout)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert sum(n.op_type == "LRN" for n in proto.graph.node) == 4
    x = randn(3, 6, 5, 7, seed=1)
    feed = x.transpose(0, 3, 1, 2) if layout == "nchw" else x
    (want,) = ort_outputs(path, {graph.inputs[0]: feed})
    assert relative_error(model.predict(x), want) <= RTOL
    # an lrn of rank 2 goes back through reshapes to 4-D: the same values, not the same graph
    back = cnnc.load_spec(path)
    assert [n.attrs for n in back.nodes if n.op == "lrn"] == [
        n.attrs for n in graph.nodes if n.op == "lrn"]
    np.testing.assert_allclose(cnnc.compile(back).predict(x), model.predict(x), rtol=1e-6)


def test_rank_3_export_moves_the_channels_to_axis_1_and_back(tmp_path):
    """onnxruntime's LRN takes 4-D tensors only: a (batch, steps, channels) value is transposed
    and reshaped to (batch, channels, steps, 1) around it."""
    graph = cnnc.load_spec("network r3\ninput 5x7\nlrn 3 alpha=2.0 beta=0.5\n")
    model = cnnc.compile(graph)
    path = tmp_path / "r3.onnx"
    model.export_onnx(str(path))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = randn(2, 5, 7, seed=4, scale=2.0)
    (want,) = ort_outputs(path, {graph.inputs[0]: x})
    assert relative_error(model.predict(x), want) <= RTOL


def test_an_even_size_is_refused_naming_the_node(tmp_path):
    node = helper.make_node("LRN", ["x"], ["y"], name="norm_even", size=4)
    path = save_model(make_model([node], {"x": ["N", 5, 2, 2]}, ["y"]), tmp_path / "e.onnx")
    with pytest.raises(CnncError, match=r"(?s)norm_even.*LRN.*size=4: an even window"):
        cnnc.load_spec(path)


def test_lrn_of_a_flattened_map_is_refused(tmp_path):
    """Flatten of an NCHW map orders the columns channel by channel: they are not channels."""
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("LRN", ["f"], ["y"], name="flat_lrn", size=3)]
    path = save_model(make_model(nodes, {"x": ["N", 2, 3, 3]}, ["y"]), tmp_path / "f.onnx")
    with pytest.raises(CnncError, match=r"(?s)flat_lrn.*LRN.*is not cnnc's channel axis"):
        cnnc.load_spec(path)


def test_export_of_an_lrn_of_a_flattened_map_keeps_cnnc_s_column_order(tmp_path):
    """The exporter flattens in cnnc's (NHWC) order where the next layer reads channels."""
    graph = cnnc.load_spec("network f\ninput 2x2x3\nflatten\nlrn 3 alpha=2.0\n")
    model = cnnc.compile(graph)
    path = tmp_path / "f.onnx"
    model.export_onnx(str(path))
    x = randn(2, 2, 2, 3, seed=5, scale=2.0)
    (want,) = ort_outputs(path, {graph.inputs[0]: x.transpose(0, 3, 1, 2)})
    assert relative_error(model.predict(x), want) <= RTOL


# ---------------------------------------------------------------- PyTorch's LocalResponseNorm


def _pytorch_chain(size, alpha, beta, k, channels, h=4, w=3, batch=0):
    """nn.LocalResponseNorm as torch.onnx.export(dynamo=True) writes it (torch 2.13), on a Relu
    of the input: Mul(x, x), a 5-D view, Pad of the channels, AveragePool (size, 1, 1),
    Squeeze, Mul alpha, Add k, Pow beta, Div."""
    half, rest = size // 2, (size - 1) // 2
    consts = {"view": np.array([batch, 1, channels, h, -1], np.int64),
              "pads": np.array([0, 0, half, 0, 0, 0, 0, rest, 0, 0], np.int64),
              "axis1": np.array([1], np.int64), "alpha": np.array(alpha, np.float32),
              "k": np.array(k, np.float32), "beta": np.array(beta, np.float32)}
    nodes = [
        helper.make_node("Relu", ["x"], ["relu"], name="relu"),
        helper.make_node("Mul", ["relu", "relu"], ["mul"], name="node_mul"),
        helper.make_node("Reshape", ["mul", "view"], ["view_out"], name="node_view",
                         allowzero=1 if batch else 0),
        helper.make_node("Pad", ["view_out", "pads"], ["pad"], name="node_pad", mode="constant"),
        helper.make_node("AveragePool", ["pad"], ["pool"], name="node_avg_pool3d",
                         kernel_shape=[size, 1, 1], strides=[1, 1, 1], pads=[0] * 6,
                         count_include_pad=1, ceil_mode=0),
        helper.make_node("Squeeze", ["pool", "axis1"], ["squeeze"], name="node_squeeze"),
        helper.make_node("Mul", ["squeeze", "alpha"], ["mul_1"], name="node_mul_1"),
        helper.make_node("Add", ["mul_1", "k"], ["add"], name="node_add"),
        helper.make_node("Pow", ["add", "beta"], ["pow_1"], name="node_pow_1"),
        helper.make_node("Div", ["relu", "pow_1"], ["y"], name="node_div"),
    ]
    shape = [batch or "N", channels, h, w]
    return make_model(nodes, {"x": shape}, ["y"], consts, opset=18)


@pytest.mark.parametrize("size,alpha,beta,k,channels", [(1, 1.0, 0.5, 2.0, 3),
                                                         (3, 2.0, 0.75, 1.0, 7),
                                                         (5, 3.0, 1.5, 0.5, 5)])
def test_pytorch_s_chain_becomes_one_lrn(size, alpha, beta, k, channels, tmp_path):
    path = save_model(_pytorch_chain(size, alpha, beta, k, channels), tmp_path / "pt.onnx")
    graph = check_against_ort(path, randn(2, channels, 4, 3, seed=size, scale=3.0))
    assert [n.op for n in graph.nodes] == ["input", "activation", "lrn"]
    assert dict(graph.nodes[-1].attrs) == {"size": size, "alpha": alpha, "beta": beta, "bias": k}


def test_pytorch_s_chain_with_an_even_window_is_not_an_lrn(tmp_path):
    """PyTorch pads an even window (size 4) by 2 before and 1 after, ONNX's LRN by 1 and 2:
    cnnc's lrn takes neither, and the chain's nodes are refused one by one."""
    path = save_model(_pytorch_chain(4, 1.0, 0.75, 1.0, 5), tmp_path / "even.onnx")
    with pytest.raises(CnncError, match=r"node_view"):
        cnnc.load_spec(path)


@pytest.mark.slow(reason="torch.onnx.export(dynamo=True) takes 10-70 s here; the hand-built "
                        "copy of its chain above runs by default")
def test_pytorch_local_response_norm_exported_by_dynamo(tmp_path):
    """The real exporter, with a fixed batch (its Reshape writes it): one lrn layer, equal to
    PyTorch's module and to onnxruntime."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional)")
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 7, 3), torch.nn.ReLU(),
                                 torch.nn.LocalResponseNorm(5, alpha=2.0, beta=0.75, k=1.5))
    x = torch.randn(2, 3, 6, 5)
    path = tmp_path / "torch_lrn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (x,), str(path), dynamo=True, opset_version=18)
    graph = check_against_ort(path, x.numpy())
    assert [n.op for n in graph.nodes][-1] == "lrn"
    with torch.no_grad():
        want = module(x).numpy().transpose(0, 2, 3, 1)
    got = cnnc.compile(graph).predict(x.numpy().transpose(0, 2, 3, 1))
    assert relative_error(got, want) <= RTOL
