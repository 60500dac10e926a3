"""A small U-Net built in PyTorch (ConvTranspose2d and Upsample decoders, skip connections by
concatenation), exported with torch.onnx.export (the TorchScript exporter, dynamo=False, and the
default one), imported by cnnc and compared with onnxruntime and PyTorch. Skipped without torch.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx_helpers import RTOL, check_against_ort, nhwc, relative_error

import cnnc

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                            "torch==2.13.0 for these tests)")
nn = torch.nn


def _conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
    """Two levels down; up by a k4/s2/p1 transposed convolution (Keras 'same'), a k3/s2/p1/op1
    one (not Keras 'same': a cropping after a 'valid' one), bilinear and nearest Upsample."""

    def __init__(self):
        super().__init__()
        self.enc1 = _conv(3, 6)
        self.enc2 = _conv(6, 8)
        self.enc3 = _conv(8, 8)
        self.pool = nn.MaxPool2d(2)
        self.up3 = nn.ConvTranspose2d(8, 8, 4, stride=2, padding=1)
        self.dec2 = _conv(16, 8)
        self.up2 = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
        self.dec1 = _conv(12, 6)
        self.bilinear = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.nearest = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Conv2d(6 + 8 + 8, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up3(e3), e2], 1))
        d1 = self.dec1(torch.cat([self.up2(d2), e1], 1))
        side = torch.cat([d1, self.bilinear(d2), self.nearest(self.nearest(e3))], 1)
        return self.head(side)


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(3)
    return UNet().eval()


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "default"])
def test_unet_matches_onnxruntime_and_pytorch(unet, dynamo, tmp_path, backend):
    path = tmp_path / "unet.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = {} if dynamo else {"dynamo": False, "dynamic_axes": {"x": {0: "batch"}}}
        torch.onnx.export(unet, (torch.randn(2, 3, 16, 16),), str(path), input_names=["x"],
                          output_names=["y"], **options)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    graph = check_against_ort(path, x, backend=backend)
    with torch.no_grad():
        want = unet(torch.from_numpy(x)).numpy()
    got = cnnc.compile(graph, backend=backend).predict(nhwc(x))
    assert relative_error(got, nhwc(want)) <= RTOL
    ops = [n.op for n in graph.nodes]
    assert ops.count("conv2d_transpose") == 2 and ops.count("cropping2d") == 1
    assert ops.count("upsampling2d") == 3
    assert {n.attrs["interpolation"] for n in graph.nodes if n.op == "upsampling2d"} == {
        "nearest", "bilinear"}
    # PyTorch's k4/s2/p1 is Keras' 'same'
    assert any(n.op == "conv2d_transpose" and n.attrs["padding"] == "same" for n in graph.nodes)
    assert graph.param_count() == sum(p.numel() for p in unet.parameters())


class Interpolations(nn.Module):
    """F.interpolate by size (Resize with sizes) and by non-square scale factors (scales)."""

    def forward(self, x):
        f = nn.functional
        return torch.cat([f.interpolate(x, size=(16, 12), mode="nearest"),
                          f.interpolate(x, scale_factor=(4, 3), mode="bilinear",
                                        align_corners=False),
                          f.interpolate(x, size=(16, 12), mode="bilinear")], 1)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "default"])
def test_interpolate_by_size_and_by_scale_matches_onnxruntime(dynamo, tmp_path):
    path = tmp_path / "interpolate.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = {} if dynamo else {"dynamo": False, "dynamic_axes": {"x": {0: "batch"}}}
        torch.onnx.export(Interpolations(), (torch.randn(2, 3, 4, 4),), str(path),
                          input_names=["x"], **options)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    graph = check_against_ort(path, x)
    assert [n.attrs["size"] for n in graph.nodes if n.op == "upsampling2d"] == [(4, 3)] * 3
