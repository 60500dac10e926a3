"""Real exported models: a LeNet-5 and a small ResNet built in PyTorch, exported with
torch.onnx.export, imported and compared with onnxruntime and with PyTorch itself, on cnnc's
NumPy and OpenCL backends. Skipped without torch (`pip install torch==2.13.0`: the CPU build)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx_helpers import RTOL, check_against_ort, nhwc, relative_error

import cnnc

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                            "torch==2.13.0 for these tests)")
nn = torch.nn


class LeNet5(nn.Module):
    """LeCun's LeNet-5 for 28x28 images: padding 2 stands in for the 32x32 input; the flatten
    is x.view(x.size(0), -1), which exports as a Shape -> Gather -> Concat -> Reshape chain."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool1(torch.tanh(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return torch.softmax(self.fc3(x), dim=1)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        shortcut = x if self.down is None else self.down(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class SmallResNet(nn.Module):
    """torchvision's ResNet layout, small: a stem with 3x3/2 max pooling (pads 1), basic blocks,
    stride-2 blocks with a 1x1 projection, global average pooling, a linear classifier. On even
    sizes PyTorch's stride-2 pads=1 is not TF 'same': cnnc adds a zero_padding2d layer before
    the convolution, and the max pooling carries its own pads."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Block(16, 16, 1), Block(16, 16, 1))
        self.layer2 = nn.Sequential(Block(16, 32, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _randomise_batch_norms(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)


EXPORTERS = ("dynamo", "torchscript")  # torch.onnx.export's default (dynamo=True) and the old


def export(module, shape, path, exporter="dynamo", **options):
    """Exported for any batch size: the default exporter with a dynamic batch dimension, the
    TorchScript one with dynamic_axes."""
    module.eval()
    x = (torch.randn(2, *shape),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        if exporter == "dynamo":
            pytest.importorskip("onnxscript", reason="the default exporter needs onnxscript")
            torch.onnx.export(module, x, str(path), input_names=["x"], output_names=["y"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
        else:
            torch.onnx.export(module, x, str(path), dynamo=False, input_names=["x"],
                              output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, **options)
    return path


def torch_outputs(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module", params=EXPORTERS)
def lenet(request, tmp_path_factory):
    torch.manual_seed(0)
    module = LeNet5()
    path = tmp_path_factory.mktemp(f"lenet_{request.param}") / "lenet.onnx"
    return module, export(module, (1, 28, 28), path, request.param)


@pytest.fixture(scope="module", params=EXPORTERS)
def resnet(request, tmp_path_factory):
    torch.manual_seed(1)
    module = SmallResNet()
    _randomise_batch_norms(module)
    path = tmp_path_factory.mktemp(f"resnet_{request.param}") / "resnet.onnx"
    # Constant folding off keeps the batch norms (in eval mode the TorchScript exporter folds
    # them; the dynamo exporter folds them into the convolutions whatever it is told).
    options = {"do_constant_folding": False} if request.param == "torchscript" else {}
    return module, export(module, (3, 32, 32), path, request.param, **options)


def test_lenet5_matches_onnxruntime_and_pytorch(lenet, backend):
    module, path = lenet
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    graph = check_against_ort(path, x, backend=backend)
    got = cnnc.compile(graph, backend=backend).predict(nhwc(x))
    assert relative_error(got, torch_outputs(module, x)) <= RTOL
    assert [n.op for n in graph.nodes] == ["input", "conv2d", "avgpool2d", "conv2d",
                                           "maxpool2d", "flatten", "dense", "dense", "dense"]
    assert graph.node("conv1").attrs["padding"] == "same"
    assert graph.node("fc3").attrs["activation"] == "softmax"
    assert graph.param_count() == sum(p.numel() for p in module.parameters())


def test_small_resnet_matches_onnxruntime_and_pytorch(resnet, backend):
    module, path = resnet
    x = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    graph = check_against_ort(path, x, backend=backend)
    got = cnnc.compile(graph, backend=backend).predict(nhwc(x))
    assert relative_error(got, torch_outputs(module, x)) <= RTOL
    ops = [n.op for n in graph.nodes]
    # The dynamo exporter folds every batch norm into its convolution, whatever it is told.
    folded = "dynamo" in path.parent.name
    assert ops.count("batchnorm") == (0 if folded else 8) and ops.count("add") == 3
    assert ops.count("zero_padding2d") == 1  # layer2's stride 2
    (stem_pool,) = [n for n in graph.nodes if n.op == "maxpool2d"]
    assert stem_pool.attrs["pads"] == (1, 0, 1, 0)  # its own pads (the last row's unread)
    assert "layer2.0.conv1" in graph.node_map and "layer2.0.down.0" in graph.node_map


def test_an_imported_resnet_trains(resnet):
    """Imported weights are where training starts, and gradients flow through every layer."""
    _, path = resnet
    graph = cnnc.load_spec(path)
    model = cnnc.compile(graph, backend="numpy", loss="mean_squared_error",
                         optimizer={"name": "sgd", "learning_rate": 0.05})
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 32, 32, 3)).astype(np.float32)
    y = rng.standard_normal((4, 10)).astype(np.float32)
    before = model.get_weights()
    losses = [model.train_step(x, y) for _ in range(3)]
    assert losses[2] < losses[0]
    after = model.get_weights()
    assert all(not np.array_equal(before[k], after[k]) for k in before
               if not k.endswith(("moving_mean", "moving_variance")))
