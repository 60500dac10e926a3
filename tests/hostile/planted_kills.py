"""A SIGKILL planted at a chosen moment of `cnnc run`, for the kill-during-training trials.

bounded.py's server calls `plant(mode, k)` in the forked child before cnnc's main. MODE says
where the process kills itself (SIGKILL: no handler, no cleanup, as a power cut or
the OOM killer would end it); K counts checkpoint writes from 1:
  before-first-checkpoint  as training starts: run.json and spec.yaml written, no checkpoint
  mid-write                during the K-th checkpoint write, half its bytes in the temp file
  before-rename            the K-th checkpoint complete and fsync'd in its temp file, not renamed
  after-rename             right after the K-th checkpoint's rename (before the folder's fsync)
  none                     no kill (the reference run)
"""

from __future__ import annotations

import os
import signal


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def plant(mode: str, k: int) -> None:
    from cnnc import atomic
    from cnnc.train import loop

    writes = {"n": 0}

    def is_checkpoint(path) -> bool:
        return os.path.basename(str(path)).startswith("checkpoint.safetensors") or \
            os.path.basename(str(path)).startswith(".checkpoint.safetensors")

    if mode == "before-first-checkpoint":
        original_run = loop.Trainer.run

        def run(self, start=None):
            _die()
            return original_run(self, start)

        loop.Trainer.run = run
    elif mode in ("mid-write", "before-rename", "after-rename"):
        real_fdopen, real_replace, real_fsync_dir = os.fdopen, os.replace, atomic._fsync_dir

        class HalfWriter:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self.f.__exit__(*exc)

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                os.fsync(self.f.fileno())
                _die()

            def __getattr__(self, name):
                return getattr(self.f, name)

        def fdopen(fd, *args, **kwargs):
            f = real_fdopen(fd, *args, **kwargs)
            target = os.readlink(f"/proc/self/fd/{fd}")
            if mode == "mid-write" and is_checkpoint(target):
                writes["n"] += 1
                if writes["n"] == k:
                    return HalfWriter(f)
            return f

        def replace(src, dst):
            if mode == "before-rename" and is_checkpoint(dst):
                writes["n"] += 1
                if writes["n"] == k:
                    _die()
            return real_replace(src, dst)

        def fsync_dir(folder):
            if mode == "after-rename" and writes.get("last") and is_checkpoint(writes["last"]):
                writes["n"] += 1
                if writes["n"] == k:
                    _die()
            return real_fsync_dir(folder)

        original_write = atomic.atomic_write

        def atomic_write(path, data):
            writes["last"] = path
            return original_write(path, data)

        atomic.os.fdopen = fdopen  # the module's name for os is os itself: patch its functions
        atomic.os.replace = replace
        atomic._fsync_dir = fsync_dir
        import cnnc.weights

        cnnc.weights.atomic_write = atomic_write
    elif mode != "none":
        raise ValueError(f"unknown mode {mode}")
