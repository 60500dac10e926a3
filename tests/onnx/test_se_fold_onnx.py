"""An imported PyTorch squeeze-and-excite block (MBConv's: depthwise conv, SE scale, 1x1
projection with batch norm, residual add; the exporter folds each batch norm into its
convolution) gets the inference fold of the SE product into the projection
(cnnc/passes/fold_gate.py) and the fusion of its gate into one node
(cnnc/passes/fuse_squeeze_excite.py) like a spec does: the imported graph's inference graph has
the gated convolution and the squeeze_excite gate, and it matches onnxruntime on the NumPy
reference and on the OpenCL device. Skipped without torch."""

from __future__ import annotations

import warnings

import pytest
from onnx_helpers import check_against_ort, randn

from cnnc.passes.pipeline import inference_graph

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                            "torch==2.13.0 for these tests)")
nn = torch.nn


class MBConv(nn.Module):
    def __init__(self, c: int = 12):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, 4, 1)
        self.fc2 = nn.Conv2d(4, c, 1)
        self.proj = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        h = nn.functional.silu(self.bn1(self.dw(x)))
        h = h * torch.sigmoid(self.fc2(nn.functional.silu(self.fc1(self.pool(h)))))
        return x + self.bn2(self.proj(h))


@pytest.mark.parametrize("backend", ["numpy", "opencl"])
def test_an_imported_se_block_folds_its_scale_into_the_projection(backend, tmp_path):
    torch.manual_seed(0)
    module = MBConv().eval()
    with torch.no_grad():  # batch norm state away from the identity
        for bn in (module.bn1, module.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "mbconv.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, 12, 7, 6),), str(path), input_names=["x"],
                          output_names=["y"], dynamo=False,
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    graph = check_against_ort(path, randn(3, 12, 7, 6, seed=5), backend=backend)
    ops = [n.op for n in inference_graph(graph).nodes]
    # the exporter folds batch norm into the convolutions: conv2d + add, gated; the gate
    # (pooling, SiLU conv, sigmoid conv) one squeeze_excite node (passes/fuse_squeeze_excite.py)
    assert "multiply" not in ops and "conv2d_add_gated" in ops, ops
    assert "squeeze_excite" in ops and "global_avgpool2d" not in ops, ops
