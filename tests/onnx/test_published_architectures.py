"""Published architectures (twins.py: MobileNetV3 small and large, EfficientNet-B0, ShuffleNetV2,
RegNetY, ConvNeXt, DenseNet-121, ResNeXt), exported from PyTorch with the default exporter
(`torch.onnx.export(model, (x,), path)`: dynamo, opset 18, a fixed batch) and with the
TorchScript one (`dynamo=False`, a dynamic batch), imported, and compared with onnxruntime and
with PyTorch within 1e-5 relative on the NumPy and OpenCL backends. Skipped without torch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx_helpers import RTOL, check_against_ort, nhwc, relative_error

import cnnc
from cnnc.errors import SpecError

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                            "torch==2.13.0 for these tests)")
twins = pytest.importorskip("twins")

SIZE = (3, 64, 64)
BATCH = 2


MODELS = tuple(twins.TWINS)
EXPORTERS = ("dynamo", "torchscript")
# The models slow to export with the dynamo exporter (tens of seconds on 2 cores), and those
# whose ops the default suite already meets through that exporter elsewhere: MobileNetV3-small
# has the large one's blocks, test_channel_split.py exports ShuffleNetV2 both ways.
SLOW = {("densenet121", "dynamo"), ("mobilenet_v3_large", "dynamo"), ("shufflenet_v2", "dynamo")}


def _export(module, path, exporter: str) -> None:
    x = (torch.randn(BATCH, *SIZE),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            pytest.importorskip("onnxscript", reason="the default exporter needs onnxscript")
            torch.onnx.export(module, x, str(path), input_names=["x"], output_names=["y"])
        else:
            torch.onnx.export(module, x, str(path), dynamo=False, input_names=["x"],
                              output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model name, exporter) -> (module, path), each exported once for the module."""
    cache: dict = {}

    def get(name: str, exporter: str):
        if (name, exporter) not in cache:
            module = twins.build(name, seed=sorted(twins.TWINS).index(name))
            path = tmp_path_factory.mktemp(f"{name}_{exporter}") / f"{name}.onnx"
            _export(module, path, exporter)
            cache[name, exporter] = module, path
        return cache[name, exporter]
    return get


def _cases(backends):
    out = []
    for name in MODELS:
        for exporter in EXPORTERS:
            for backend in backends:
                marks = []
                if (name, exporter) in SLOW or backend == "opencl":
                    marks.append(pytest.mark.slow)
                out.append(pytest.param(name, exporter, backend, marks=marks,
                                        id=f"{name}-{exporter}-{backend}"))
    return out


@pytest.mark.parametrize(("name", "exporter", "backend"), _cases(("numpy", "opencl")),
                         indirect=["backend"])
def test_published_architecture_matches_onnxruntime_and_pytorch(name, exporter, backend,
                                                                exported):
    module, path = exported(name, exporter)
    x = np.random.default_rng(3).standard_normal((BATCH, *SIZE)).astype(np.float32)
    graph = check_against_ort(path, x, backend=backend)
    got = cnnc.compile(graph, backend=backend).predict(nhwc(x))
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert relative_error(got, want) <= RTOL


def test_an_op_cnnc_lacks_is_named_with_its_node(tmp_path):
    """torch.einsum: the default exporter writes an Einsum node, refused by name."""
    pytest.importorskip("onnxscript", reason="the default exporter needs onnxscript")

    class WithEinsum(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.mix = torch.nn.Parameter(torch.randn(4, 4))

        def forward(self, x):
            return torch.einsum("nchw,cd->ndhw", torch.relu(self.conv(x)), self.mix)

    path = tmp_path / "einsum.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(WithEinsum().eval(), (torch.randn(2, 3, 8, 8),), str(path))
    with pytest.raises(SpecError) as info:
        cnnc.load_spec(path)
    text = info.value.render()
    assert "1 node cannot be lowered" in text
    assert "node 'node_einsum' (Einsum): this operator is not supported" in text


def test_the_default_exporter_keeps_pytorch_names(exported):
    """The dynamo exporter names nodes by op ('node_Conv_12'); layers take their names from
    the weights' state_dict paths instead, and an unnamed activation joins its convolution."""
    _, path = exported("resnext", "dynamo")
    graph = cnnc.load_spec(path)
    assert "layer1.0.conv1" in graph.node_map and "layer2.0.downsample.0" in graph.node_map
    assert graph.node("layer1.0.conv1").attrs["activation"] == "relu"
    assert graph.node("fc").op == "dense"
