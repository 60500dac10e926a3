"""Issue 20's activations from PyTorch: a small conv net per activation exported with the
TorchScript exporter (dynamo=False, which writes SiLU, GELU and Mish as element-wise subgraphs at
its opsets) and the default dynamo exporter, imported, the activation fused into each conv, and
compared with onnxruntime (RTOL) on the NumPy and OpenCL backends. cnnc exports of each back
into onnxruntime at opsets with and without the operator. Skipped without torch."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx_helpers import RTOL, check_against_ort, nhwc, ort_outputs, relative_error

import cnnc
from cnnc.errors import SpecError
from cnnc.passes.pipeline import inference_graph

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                            "torch==2.13.0 for these tests)")
nn = torch.nn

TWINS = {
    "silu": lambda: nn.SiLU(),
    "hard_sigmoid": lambda: nn.Hardsigmoid(),
    "hard_swish": lambda: nn.Hardswish(),
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "softplus": lambda: nn.Softplus(),
    "mish": lambda: nn.Mish(),
}


class Net(nn.Module):
    """Two convolutions, each followed by the activation; no pooling (nothing but the
    activation's own plumbing in the file)."""

    def __init__(self, act):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.act1 = TWINS[act]()
        self.conv2 = nn.Conv2d(6, 5, 3, stride=2, padding=1)
        self.act2 = TWINS[act]()

    def forward(self, x):
        return self.act2(self.conv2(self.act1(self.conv1(x))))


def export(act, path, *, dynamo, opset=None):
    torch.manual_seed(0)
    module = Net(act).eval()
    options = {} if opset is None else {"opset_version": opset}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, 3, 9, 9),), str(path), dynamo=dynamo,
                          input_names=["x"], output_names=["y"], **options)
    return module, path


def _check_layers(graph, act):
    """Each module is a layer of its own (named, as PyTorch's nn.ReLU modules are), whatever
    subgraph the exporter wrote for it; inference fuses it into the conv before it."""
    assert [n.op for n in graph.nodes] == ["input", "conv2d", "activation", "conv2d",
                                           "activation"]
    assert [n.attrs["activation"] for n in graph.nodes[2::2]] == [act, act]
    fused = inference_graph(graph)
    assert [n.op for n in fused.nodes] == ["input", "conv2d", "conv2d"]
    assert all(n.attrs["activation"] == act for n in fused.nodes[1:])


def _inputs():
    return (np.random.default_rng(0).standard_normal((2, 3, 9, 9)) * 3).astype(np.float32)


@pytest.mark.parametrize("act", sorted(TWINS))
@pytest.mark.parametrize("opset", [13, 17])
def test_torchscript_export_imports_fused_and_matches(act, opset, backend, tmp_path):
    module, path = export(act, tmp_path / f"{act}.onnx", dynamo=False, opset=opset)
    x = _inputs()
    graph = check_against_ort(path, x, backend=backend)
    _check_layers(graph, act)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    got = cnnc.compile(graph, backend=backend).predict(nhwc(x))
    assert relative_error(got, nhwc(want)) <= RTOL


@pytest.mark.parametrize("act", sorted(TWINS))
def test_dynamo_export_imports_fused_and_matches(act, tmp_path):
    pytest.importorskip("onnxscript", reason="PyTorch's default exporter needs onnxscript")
    _, path = export(act, tmp_path / f"{act}.onnx", dynamo=True)
    graph = check_against_ort(path, _inputs())
    # The dynamo exporter names nodes by op only ('node_silu'): like TorchScript's unnamed
    # '/Relu', each activation joins the convolution before it (named from its weight).
    assert [(n.op, n.attrs.get("activation")) for n in graph.nodes] == [
        ("input", None), ("conv2d", act), ("conv2d", act)]
    assert [n.name for n in graph.nodes[1:]] == ["conv1", "conv2"]


@pytest.mark.parametrize("act", sorted(TWINS))
@pytest.mark.parametrize("opset", [13, 17, 20, 21])
def test_cnnc_export_runs_in_onnxruntime_and_reads_back(act, opset, tmp_path):
    graph = cnnc.load_spec(f"input 6x6x3\nc: conv2d 4 3 {act}\nflatten\nd: dense 3 {act}\n"
                           f"a: activation {act}\n")
    model = cnnc.compile(graph, backend="numpy")
    path = tmp_path / "m.onnx"
    model.export_onnx(str(path), opset=opset)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    x = np.random.default_rng(1).standard_normal((3, 6, 6, 3)).astype(np.float32) * 3
    (want,) = ort_outputs(path, {"input_layer": x.transpose(0, 3, 1, 2)})
    assert relative_error(model.predict(x), want) <= RTOL
    assert cnnc.load_spec(path) == graph


def test_the_operator_is_written_from_its_opset_on(tmp_path):
    graph = cnnc.load_spec("input 4\na: activation gelu\nb: activation mish\n"
                           "c: activation hard_swish\n")
    ops = {}
    for opset in (13, 17, 18, 20):
        path = tmp_path / f"m{opset}.onnx"
        cnnc.compile(graph, backend="numpy").export_onnx(str(path), opset=opset)
        ops[opset] = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops[13] == ["Div", "Erf", "Add", "Mul", "Mul", "Softplus", "Tanh", "Mul",
                       "HardSigmoid", "Mul"]
    assert ops[17] == ["Div", "Erf", "Add", "Mul", "Mul", "Softplus", "Tanh", "Mul", "HardSwish"]
    assert ops[18] == ["Div", "Erf", "Add", "Mul", "Mul", "Mish", "HardSwish"]
    assert ops[20] == ["Gelu", "Mish", "HardSwish"]


def test_hard_sigmoid_with_other_constants_is_refused_by_name(tmp_path):
    from onnx import TensorProto, helper

    node = helper.make_node("HardSigmoid", ["x"], ["y"], name="hs")  # ONNX's alpha 0.2
    g = helper.make_graph([node], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                      ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "hs.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(SpecError, match=r"node 'hs' \(HardSigmoid\): alpha=0.2: cnnc's "
                                        r"hard_sigmoid has alpha 0.1666"):
        cnnc.load_spec(path)
