"""When `cnnc run` trains data-parallel, and the one clear error when it cannot."""

from __future__ import annotations

import pytest

from cnnc.cli import main
from cnnc.distributed import launch


def _run(*argv):
    return main(["run", *map(str, argv), "--backend", "numpy", "--progress", "off"])


def test_without_mpi4py_distributed_is_one_clear_error(run_spec_file, monkeypatch, capsys):
    monkeypatch.setattr(launch, "mpi_available", lambda: False)
    assert _run(run_spec_file, "--distributed") == 2
    err = capsys.readouterr().err
    assert "--distributed: data-parallel training needs mpi4py" in err
    assert "pip install -e '.[mpi]'" in err and "Traceback" not in err


def test_started_as_several_processes_without_mpi4py_is_an_error(run_spec_file, monkeypatch,
                                                                 capsys):
    monkeypatch.setattr(launch, "mpi_available", lambda: False)
    monkeypatch.setenv("PMI_SIZE", "4")
    assert _run(run_spec_file) == 2
    assert "one of 4 processes, but mpi4py is not installed" in capsys.readouterr().err


@pytest.mark.parametrize("env, flag, want", [
    ({}, None, False),  # a plain run, as before
    ({"PMI_SIZE": "1"}, None, False),  # mpiexec -n 1: one device, as before
    ({"PMI_SIZE": "2"}, None, True),  # MPICH's mpiexec -n 2, or srun --mpi=pmi2
    ({"OMPI_COMM_WORLD_SIZE": "3"}, None, True),  # Open MPI's mpirun
    ({"PMIX_RANK": "0", "SLURM_STEP_NUM_TASKS": "8"}, None, True),  # srun --mpi=pmix
    ({}, True, True),  # --distributed
])
def test_data_parallel_when_launched_as_several_ranks(env, flag, want, monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK",
                 "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(launch, "mpi_available", lambda: True)
    assert launch.wanted(flag) is want
