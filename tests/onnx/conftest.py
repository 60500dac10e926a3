"""Fixtures for the ONNX tests: skipped, with the reason, where onnx or onnxruntime is missing
(the dev extra installs both)."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx", reason="onnx is not installed (pip install 'cnnc[dev]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install "
                                          "'cnnc[dev]')")


def opencl_status() -> tuple[bool, str]:
    from cnnc.backends.opencl.device import devices
    from cnnc.errors import DeviceError

    try:
        usable = [d for d in devices() if d.usable]
    except DeviceError as err:
        return False, f"no OpenCL: {err.message}"
    return (True, "") if usable else (False, "no usable OpenCL device")


@pytest.fixture
def opencl_device() -> None:
    """Skips the test, with the reason, where no usable OpenCL device is found (a fixture, as
    `from conftest import ...` can reach another folder's conftest under xdist)."""
    ok, why = opencl_status()
    if not ok:
        pytest.skip(why)


@pytest.fixture(params=["numpy", "opencl"])
def backend(request):
    if request.param == "opencl":
        ok, why = opencl_status()
        if not ok:
            pytest.skip(why)
    return request.param


@pytest.fixture(autouse=True)
def _dynamo_needs_onnxscript(request):
    """A test run with PyTorch's default exporter (parametrised `dynamo=True` or
    `exporter='dynamo'`) is skipped, with the reason, where onnxscript is missing: that exporter
    imports it, and the TorchScript cases of the same test still run."""
    spec = getattr(request.node, "callspec", None)
    params = spec.params if spec is not None else {}
    if params.get("dynamo") is True or params.get("exporter") == "dynamo":
        pytest.importorskip("onnxscript", reason="onnxscript is not installed (PyTorch's "
                                                 "default exporter needs it)")
