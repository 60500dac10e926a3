"""Fixtures for data-parallel tests: a small spec and dataset on disk, backends, MPI launching.

Tests that start real ranks run `mpiexec` (MPICH's, from the `mpi` extra) and skip with a
message when the extra is not installed; the rest run ranks as threads (cnnc.testing.threadcomm)
and need no MPI at all.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.testing.equivalence import SPEC
from cnnc.testing.offline import isolate_datasets

# The equivalence spec on the Fashion-MNIST-shaped synthetic dataset, with a validation set.
RUN_SPEC = SPEC.replace("train:\n", "train:\n  dataset: fashion_mnist\n  validation_size: 24\n")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    """One cache for the session, so that each test (and each rank) does not build the OpenCL
    programs again; no dataset is ever cached in it (downloads are off, data comes by --data)."""
    return os.environ.get("CNNC_CACHE_DIR") or str(tmp_path_factory.mktemp("cnnc-cache"))


@pytest.fixture(autouse=True)
def isolated_data_env(tmp_path, monkeypatch, session_cache):
    isolate_datasets(monkeypatch, tmp_path / "cache")
    monkeypatch.setenv("CNNC_CACHE_DIR", session_cache)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """168 training examples (144 after the validation set), 40 test examples, 12x12."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("small-data"), train=168, test=40,
                                   shape=(12, 12))


@pytest.fixture
def run_spec_file(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(RUN_SPEC)
    return path


def _opencl_status() -> tuple[bool, str]:
    import cnnc
    from cnnc.errors import CnncError

    try:
        model = cnnc.compile(SPEC, backend="opencl")
        model.train_step(np.zeros((2, 12, 12, 1), np.float32), np.zeros(2, np.int32))
    except (ImportError, CnncError) as err:
        return False, f"the OpenCL backend cannot run here: {err}"
    return True, ""


@pytest.fixture(scope="session")
def opencl_status():
    return _opencl_status()


@pytest.fixture(params=["numpy", "opencl"])
def backend(request, opencl_status):
    if request.param == "opencl" and not opencl_status[0]:
        pytest.skip(opencl_status[1])
    return request.param


def mpiexec_path() -> str | None:
    """MPICH's mpiexec from the mpi extra (beside this Python), else one on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


@pytest.fixture(scope="session")
def mpiexec():
    """A function running `mpiexec -n N <argv>` (skips the test without the mpi extra)."""
    if importlib.util.find_spec("mpi4py") is None or mpiexec_path() is None:
        pytest.skip("the mpi extra is not installed (pip install -e '.[mpi]'): no mpi4py or "
                    "mpiexec to start ranks with")
    launcher = mpiexec_path()

    def command(n: int, *argv: str) -> list[str]:
        return [launcher, "-n", str(n), *argv]

    check = subprocess.run(command(2, sys.executable, "-c", "from mpi4py import MPI; "
                                   "MPI.COMM_WORLD.Barrier()"),
                           capture_output=True, text=True, timeout=60, check=False)
    if check.returncode != 0:
        pytest.fail(f"mpiexec cannot start 2 ranks here: {check.stderr.strip()}")
    return command
