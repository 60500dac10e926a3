"""settings.pin_cpu_threads: pocl's CPU workers pinned (POCL_AFFINITY=1) only where the process
has every core to itself and the user chose nothing, and set before pocl starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cnnc import settings


@pytest.fixture
def env(monkeypatch):
    for name in ("POCL_AFFINITY", "POCL_MAX_PTHREAD_COUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    return monkeypatch


def test_pinned_where_the_process_has_every_core(env):
    env.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    settings.pin_cpu_threads()
    assert os.environ["POCL_AFFINITY"] == "1"


@pytest.mark.parametrize("value", ["0", "1"])
def test_the_users_choice_stands(env, value):
    env.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    env.setenv("POCL_AFFINITY", value)
    settings.pin_cpu_threads()
    assert os.environ["POCL_AFFINITY"] == value


def test_not_pinned_where_ranks_share_the_cores(env):
    """share_cpu_threads gave each rank a share of the cores: pinned, every rank's worker 0
    would sit on core 0."""
    env.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    settings.share_cpu_threads(2)
    assert os.environ["POCL_MAX_PTHREAD_COUNT"] == "2"
    settings.pin_cpu_threads()
    assert "POCL_AFFINITY" not in os.environ


def test_not_pinned_where_the_process_is_confined_to_some_cores(env):
    env.setattr(os, "sched_getaffinity", lambda pid: {2, 3})
    settings.pin_cpu_threads()
    assert "POCL_AFFINITY" not in os.environ


def test_set_before_the_devices_are_enumerated():
    """In a fresh process (pocl reads it once, when the platforms are first listed): listing
    cnnc's devices leaves POCL_AFFINITY set for pocl."""
    child_env = {k: v for k, v in os.environ.items()
                 if k not in ("POCL_AFFINITY", "POCL_MAX_PTHREAD_COUNT")}
    code = ("import os, cnnc.backends.opencl.device as d\n"
            "confined = os.sched_getaffinity(0) != set(range(os.cpu_count()))\n"
            "assert 'POCL_AFFINITY' not in os.environ\n"
            "d.devices()\n"
            "print('confined' if confined else os.environ.get('POCL_AFFINITY'))\n")
    out = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()[-1]
    assert out in ("1", "confined")
