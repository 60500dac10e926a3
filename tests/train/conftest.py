"""Fixtures for training tests: a tiny spec, synthetic data on disk, no downloads, backends."""

from __future__ import annotations

import numpy as np
import pytest
from training_spec import TINY_SPEC

from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.testing.offline import isolate_datasets


@pytest.fixture(autouse=True)
def isolated_data_env(tmp_path, monkeypatch):
    isolate_datasets(monkeypatch, tmp_path / "cache")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A synthetic Fashion-MNIST-shaped dataset of 12x12 images: 160 train, 48 test."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("tiny-data"), train=160, test=48,
                                   shape=(12, 12))


@pytest.fixture
def tiny_spec(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPEC)
    return path


def opencl_available() -> tuple[bool, str]:
    """Whether the OpenCL backend can run here, and why not."""
    import cnnc
    from cnnc.errors import DeviceError

    try:
        model = cnnc.compile(TINY_SPEC, backend="opencl")
        x = np.zeros((2, 12, 12, 1), np.float32)
        model.train_step(x, np.zeros(2, np.int32))
        model.predict(x)
    except (ImportError, AttributeError, NotImplementedError) as err:
        return False, f"the OpenCL backend is not available: {type(err).__name__}: {err}"
    except DeviceError as err:  # no OpenCL device here, or its kernels do not build on it
        return False, f"the OpenCL backend cannot run the tiny spec here: {err.message}"
    return True, ""


@pytest.fixture(scope="session")
def opencl_status():
    return opencl_available()


@pytest.fixture(params=["numpy", "opencl"])
def backend(request, opencl_status):
    if request.param == "opencl" and not opencl_status[0]:
        pytest.skip(opencl_status[1])
    return request.param
