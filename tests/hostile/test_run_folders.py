"""Run folders that cannot be written: --out a file, under a file, empty, on a read-only or full
filesystem. Each is a clean message (exit status 2); what was written stays whole; nothing
temporary is left behind."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest
from training_spec import TINY_SPEC

from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.train.checkpoint import load_checkpoint

MEMORY_MB = 800
SECONDS = 120.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("folders")
    spec = folder / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    data = write_synthetic_dataset(folder / "data", train=160, test=48, shape=(12, 12))
    return spec, data


def _argv(setup, out, *extra):
    spec, data = setup
    return ["run", spec, "--data", data, "--backend", "numpy", "--progress", "off",
            "--out", out, *extra]


def _refused(outcome, needle):
    assert outcome.rc == 2 and "Traceback" not in outcome.stderr, outcome.describe()
    assert needle in outcome.stderr, outcome.describe()


def test_out_is_a_file(bounded, setup, tmp_path):
    (tmp_path / "file").write_text("x")
    out = bounded.run(_argv(setup, tmp_path / "file"), memory_mb=MEMORY_MB, timeout_s=SECONDS)
    _refused(out, "it is a file, not a folder")
    out = bounded.run(_argv(setup, tmp_path / "file" / "run"), memory_mb=MEMORY_MB,
                      timeout_s=SECONDS)
    _refused(out, "a file stands where a folder of that path should be")


def test_empty_folder_names(bounded, setup):
    _refused(bounded.run(_argv(setup, ""), memory_mb=MEMORY_MB, timeout_s=SECONDS),
             "--out needs a folder name")
    _refused(bounded.run(["run", "--resume", ""], memory_mb=MEMORY_MB, timeout_s=SECONDS),
             "--resume needs a run folder")


def test_resume_of_a_folder_that_is_not_a_run(bounded, tmp_path):
    out = bounded.run(["run", "--resume", tmp_path], memory_mb=MEMORY_MB, timeout_s=SECONDS)
    _refused(out, "not a cnnc run folder")
    (tmp_path / "run.json").write_text("{not json")
    out = bounded.run(["run", "--resume", tmp_path], memory_mb=MEMORY_MB, timeout_s=SECONDS)
    _refused(out, "cannot read this run record")


def test_writes_that_fail_like_a_full_disk(bounded, setup, tmp_path):
    """RLIMIT_FSIZE makes a write past 8 kB fail (EFBIG), as a full disk (ENOSPC) would: the
    run's records fit, a checkpoint (about 30 kB) does not."""
    out = tmp_path / "run"
    result = bounded.run(_argv(setup, out), memory_mb=MEMORY_MB, timeout_s=SECONDS, fsize_kb=8)
    _refused(result, "File too large")
    assert "free some space" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "spec.yaml"]  # no temporary
    # With room again, --resume starts the run over and finishes it.
    resumed = bounded.run(["run", "--resume", out, "--progress", "off"], memory_mb=MEMORY_MB,
                          timeout_s=SECONDS)
    assert resumed.rc == 0, resumed.describe()
    assert load_checkpoint(out / "checkpoint.safetensors").epoch == 3
    # Out of room while extending it to 4 epochs: the epoch-3 checkpoint stands, whole.
    before = (out / "checkpoint.safetensors").read_bytes()
    extended = bounded.run(["run", "--resume", out, "--epochs", "4", "--progress", "off"],
                           memory_mb=MEMORY_MB, timeout_s=SECONDS, fsize_kb=8)
    _refused(extended, "File too large")
    assert (out / "checkpoint.safetensors").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ real filesystems

NAMESPACE_REASON = None
if shutil.which("unshare") is None:
    NAMESPACE_REASON = "needs unshare(1) to mount a private tmpfs"
else:
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        NAMESPACE_REASON = ("cannot mount a tmpfs in a user namespace here: "
                            + (probe.stderr.strip() or f"status {probe.returncode}"))

SCRIPT = textwrap.dedent("""
    import json, os, subprocess, sys
    from pathlib import Path
    mount, argv = Path(sys.argv[1]), sys.argv[2:]
    cnnc = os.path.join(os.path.dirname(sys.executable), "cnnc")
    done = subprocess.run([cnnc, *argv], capture_output=True, text=True)
    names = sorted(p.name for p in (mount / "run").iterdir()) if (mount / "run").is_dir() else []
    checkpoint = None
    if "checkpoint.safetensors" in names:
        from cnnc.train.checkpoint import load_checkpoint
        checkpoint = load_checkpoint(mount / "run" / "checkpoint.safetensors").epoch
    print(json.dumps({"rc": done.returncode, "stderr": done.stderr, "names": names,
                      "checkpoint": checkpoint}))
""")


def _in_tmpfs(tmp_path, options: str, argv: list) -> dict:
    """Run `cnnc ARGV` with a fresh tmpfs mounted (with `options`) at tmp_path/mnt, in a
    private mount namespace; what the folder held is reported from inside it."""
    import json

    mount = tmp_path / "mnt"
    mount.mkdir()
    command = (f"mount -t tmpfs -o {options} tmpfs {mount} && exec {sys.executable} -c "
               f"'{SCRIPT}' {mount} " + " ".join(f"'{a}'" for a in argv))
    done = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(NAMESPACE_REASON is not None, reason=NAMESPACE_REASON or "")
def test_a_read_only_filesystem(setup, tmp_path):
    report = _in_tmpfs(tmp_path, "ro", _argv(setup, tmp_path / "mnt" / "run"))
    assert report["rc"] == 2 and "Traceback" not in report["stderr"], report
    assert "Read-only file system" in report["stderr"], report


@pytest.mark.skipif(NAMESPACE_REASON is not None, reason=NAMESPACE_REASON or "")
def test_a_full_filesystem(setup, tmp_path):
    # 64 kB: the run's records and one checkpoint fit; the next checkpoint (written beside
    # the old one until renamed over it) does not.
    report = _in_tmpfs(tmp_path, "size=64k", _argv(setup, tmp_path / "mnt" / "run"))
    assert report["rc"] == 2 and "Traceback" not in report["stderr"], report
    assert "No space left on device" in report["stderr"], report
    assert not [n for n in report["names"] if n.endswith(".tmp")], report
    assert report["checkpoint"] is None or report["checkpoint"] >= 1, report
