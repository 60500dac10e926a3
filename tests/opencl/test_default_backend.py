"""cnnc.compile without backend= runs where `cnnc run` runs: the qualified OpenCL device the
command line picks; the NumPy reference when asked, for float64, or (said once) when no device
qualifies."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import cnnc
from cnnc import model as model_module
from cnnc.errors import DeviceError

SPEC = "input 4x4x1\nflatten\ndense 3 softmax"


def test_the_default_is_the_device_the_command_line_picks(device):
    from cnnc.backends.opencl.device import select_device

    model = cnnc.compile(SPEC)
    assert model.backend.device is select_device(None)
    assert "opencl" in repr(model)
    x = np.random.default_rng(0).random((2, 4, 4, 1), dtype=np.float32)
    reference = cnnc.compile(SPEC, backend="numpy")
    np.testing.assert_allclose(model.predict(x), reference.predict(x), rtol=1e-5)


def test_numpy_when_asked_or_for_float64():
    assert "numpy" in repr(cnnc.compile(SPEC, backend="numpy"))
    assert cnnc.compile(SPEC, dtype="float64").backend.dtype == np.float64


def test_no_qualified_device_falls_back_to_numpy_saying_so_once(monkeypatch):
    def no_device(*args, **kwargs):
        raise DeviceError("no OpenCL device can run cnnc's kernels (0:0 'pocl': a reason)")

    monkeypatch.setattr(model_module, "_fallback_said", False)
    monkeypatch.setattr(model_module, "_backend",
                        lambda name, device, dtype: no_device() if name == "opencl"
                        else model_module.get_backend("numpy", dtype=dtype))
    with pytest.warns(UserWarning, match=r"cnnc.compile: no OpenCL device qualifies \(no OpenCL "
                                         r"device can run cnnc's kernels .*\); running on the "
                                         r"NumPy reference backend.*backend='numpy'"):
        first = cnnc.compile(SPEC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: the second compile is quiet
        second = cnnc.compile(SPEC)
    assert "numpy" in repr(first) and "numpy" in repr(second)
    with pytest.raises(DeviceError, match="no OpenCL device can run"):
        cnnc.compile(SPEC, device="gpu")  # a device asked for: its error, never a fallback
