"""Real ranks under `mpiexec` (MPICH from the mpi extra; skipped with a message without it).

- `mpiexec -n 2 cnnc run` trains as one device would and leaves one run folder;
- N = 2 and 3 ranks reproduce one device's per-step losses and final weights (100 steps and
  N = 1, 2, 3 under -m slow);
- a rank that fails ends every rank within seconds, named, and the last good checkpoint stays;
- Ctrl-C on one rank stops every rank after the same step, with a checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_threads import assert_same_run

from cnnc.train.checkpoint import load_checkpoint

CNNC = [sys.executable, "-m", "cnnc.cli"]


def _backend(opencl_status) -> str:
    return "opencl" if opencl_status[0] else "numpy"


def _env() -> dict[str, str]:
    # Each rank one pocl thread, so that two ranks fit the two cores of a small machine.
    return {**os.environ, "POCL_MAX_PTHREAD_COUNT": "1"}


def test_mpiexec_two_ranks_train_as_one_device(mpiexec, run_spec_file, small_data, tmp_path,
                                               opencl_status):
    common = ["--data", str(small_data), "--epochs", "2", "--progress", "off",
              "--backend", _backend(opencl_status)]
    two = subprocess.run(mpiexec(2, *CNNC, "run", str(run_spec_file), "--out",
                                 str(tmp_path / "two"), *common),
                         capture_output=True, text=True, timeout=300, env=_env(), check=False)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("epoch 2/2") == 1 and "on each of 2 ranks" in two.stdout
    assert "MB of gradients all-reduced per step" in two.stdout
    one = subprocess.run([*CNNC, "run", str(run_spec_file), "--out", str(tmp_path / "one"),
                          *common], capture_output=True, text=True, timeout=300, check=False)
    assert one.returncode == 0, one.stderr
    for a, b in zip(*(json.loads((tmp_path / d / "metrics.json").read_text())
                      for d in ("one", "two"))):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["val_accuracy"] == pytest.approx(a["val_accuracy"], abs=1e-9)
    acc = [json.loads((tmp_path / d / "test_metrics.json").read_text())["accuracy"]
           for d in ("one", "two")]
    assert abs(acc[0] - acc[1]) <= 0.001
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["one", "two"]


def _record(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    data = np.load(path)
    return data["losses"], {k[2:]: data[k] for k in data.files if k.startswith("w:")}


def _equivalence(mpiexec, tmp_path, backend, ranks, steps, examples):
    args = ["-m", "cnnc.testing.equivalence", "--backend", backend, "--steps", str(steps),
            "--examples", str(examples)]
    single = tmp_path / "single.npz"
    subprocess.run([sys.executable, *args, str(single), "--single"], check=True, timeout=600,
                   env=_env())  # the same device settings as the ranks
    want = _record(single)
    for n in ranks:
        out = tmp_path / f"ranks{n}.npz"
        done = subprocess.run(mpiexec(n, sys.executable, *args, str(out)), capture_output=True,
                              text=True, timeout=600, env=_env(), check=False)
        assert done.returncode == 0, done.stderr
        assert_same_run(_record(out), want, f"{n} ranks")


def test_two_and_three_ranks_reproduce_one_device(mpiexec, tmp_path, opencl_status):
    _equivalence(mpiexec, tmp_path, _backend(opencl_status), (2, 3), steps=8, examples=60)


@pytest.mark.slow
def test_one_two_three_ranks_reproduce_one_device_over_100_steps(mpiexec, tmp_path,
                                                                 opencl_status):
    _equivalence(mpiexec, tmp_path, _backend(opencl_status), (1, 2, 3), steps=100,
                 examples=600)


# ---------------------------------------------------------------- failures


def _rank_pids(launcher: int) -> dict[int, int]:
    """rank -> pid of the ranks an mpiexec started (its descendants with PMI_RANK set)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    ranks = {}
    for pid in parents:
        p = pid
        while p in parents and p != launcher:
            p = parents[p]
        if p != launcher or pid == launcher:
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(b"PMI_RANK="):
                ranks[int(item.split(b"=")[1])] = pid
    return ranks


def _start_long_run(mpiexec, run_spec_file, small_data, out):
    """Two ranks training for long on the NumPy backend; returns once epoch 1 is done."""
    proc = subprocess.Popen(
        mpiexec(2, *CNNC, "run", str(run_spec_file), "--out", str(out), "--data",
                str(small_data), "--backend", "numpy", "--epochs", "500", "--progress", "off"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    for line in proc.stdout:
        if line.startswith("epoch   1/500"):
            break
    ranks = _rank_pids(proc.pid)
    assert sorted(ranks) == [0, 1], ranks
    return proc, ranks


def _ended_within(proc, seconds: float) -> tuple[str, float]:
    """(what the ranks and the launcher said after the start, seconds until every rank ended)."""
    start = time.monotonic()
    out, err = proc.communicate(timeout=seconds)
    return out + err, time.monotonic() - start


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finding the ranks' pids needs /proc")
def test_a_terminated_rank_ends_every_rank_naming_it(mpiexec, run_spec_file, small_data,
                                                     tmp_path):
    proc, ranks = _start_long_run(mpiexec, run_spec_file, small_data, tmp_path / "run")
    os.kill(ranks[1], signal.SIGTERM)
    err, took = _ended_within(proc, 30)
    assert proc.returncode != 0 and took < 15, err
    assert "cnnc: rank 1 of 2 failed: terminated (SIGTERM)" in err
    assert "stopping all 2 ranks; the last good checkpoint is" in err
    assert load_checkpoint(tmp_path / "run" / "checkpoint.safetensors").epoch >= 1


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finding the ranks' pids needs /proc")
def test_a_killed_rank_ends_every_rank_and_leaves_the_checkpoint(mpiexec, run_spec_file,
                                                                 small_data, tmp_path):
    proc, ranks = _start_long_run(mpiexec, run_spec_file, small_data, tmp_path / "run")
    os.kill(ranks[1], signal.SIGKILL)  # it cannot say anything: the launcher reports
    err, took = _ended_within(proc, 30)
    assert proc.returncode != 0 and took < 15, err
    assert "Killed" in err or "KILLED" in err
    assert load_checkpoint(tmp_path / "run" / "checkpoint.safetensors").epoch >= 1


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finding the ranks' pids needs /proc")
def test_ctrl_c_on_one_rank_stops_every_rank_after_the_same_step(mpiexec, run_spec_file,
                                                                 small_data, tmp_path):
    proc, ranks = _start_long_run(mpiexec, run_spec_file, small_data, tmp_path / "run")
    os.kill(ranks[1], signal.SIGINT)
    err, took = _ended_within(proc, 30)
    assert proc.returncode == 130 and took < 15, err
    assert err.count("interrupted; checkpoint saved") == 1 and "--resume" in err
    assert "Traceback" not in err
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    assert ckpt.step >= 9 and "interrupted" in (tmp_path / "run" / "summary.txt").read_text()
