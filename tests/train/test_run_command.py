"""`cnnc run`: the run folder, resuming, Ctrl-C in a real process, and clear errors (exit 2)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

from cnnc.cli import main
from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.train.checkpoint import load_checkpoint


def _run(*argv, backend="numpy") -> int:
    return main(["run", *map(str, argv), "--backend", backend, "--progress", "off"])


def test_run_folder_holds_everything(tiny_spec, tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(tiny_spec, "--data", tiny_data, "--out", out, "--epochs", "2") == 0
    text = capsys.readouterr().out
    assert "epoch 1/2" in text and "epoch 2/2" in text and "val_accuracy" in text
    assert "test      accuracy" in text and str(out) in text
    names = {p.name for p in out.iterdir()}
    assert {"run.json", "spec.yaml", "checkpoint.safetensors", "weights.safetensors",
            "metrics.csv", "metrics.json", "test_metrics.json", "confusion_matrix.csv",
            "summary.txt"} <= names
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,loss,accuracy,val_loss,val_accuracy") and len(rows) == 3
    test = json.loads((out / "test_metrics.json").read_text())
    assert np.array(test["confusion_matrix"]).sum() == 48 and len(test["class_names"]) == 10
    assert f"{test['accuracy']:.4f}" in (out / "summary.txt").read_text()
    assert "epochs: 2" in (out / "spec.yaml").read_text()  # the override, resolved
    # The weights file loads back into the same spec and gives the reported accuracy.
    assert main(["eval", str(tiny_spec), "--weights", str(out / "weights.safetensors"),
                 "--backend", "numpy", "--data", str(tiny_data)]) == 0
    assert f"accuracy {test['accuracy']:.4f}" in capsys.readouterr().out


def test_default_run_folder_is_named_for_the_spec(tiny_spec, tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _run(tiny_spec, "--data", tiny_data, "--epochs", "1", "--limit", "32") == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("tiny-") and (folder / "weights.safetensors").exists()
    assert json.loads((folder / "run.json").read_text())["examples"]["train"] == 32


def _weights(folder):
    return load_file(str(folder / "weights.safetensors"))


def test_resume_after_completed_epochs_matches(tiny_spec, tiny_data, tmp_path, capsys,
                                               backend):
    _run(tiny_spec, "--data", tiny_data, "--out", tmp_path / "straight", backend=backend)
    _run(tiny_spec, "--data", tiny_data, "--out", tmp_path / "part", "--epochs", "1",
         backend=backend)
    # No --backend, --data or --progress: a resumed run keeps those it started with.
    assert main(["run", "--resume", str(tmp_path / "part"), "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "resuming  from the checkpoint after epoch 1" in out
    assert f"device    {backend} (" in out
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    history = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert json.loads((tmp_path / "part" / "run.json").read_text())["train"]["epochs"] == 3


def test_ctrl_c_saves_a_checkpoint_and_resume_ends_the_same(tiny_spec, tmp_path):
    data = write_synthetic_dataset(tmp_path / "data", train=1600, test=48, shape=(12, 12))
    common = ["--backend", "numpy", "--data", str(data), "--progress", "off", "--epochs", "6"]
    cmd = [sys.executable, "-m", "cnnc.cli", "run", str(tiny_spec)]
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "cut"), *common],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("epoch 1/6"):
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted; checkpoint saved" in err and "--resume" in err
    assert "Traceback" not in err
    ckpt = load_checkpoint(tmp_path / "cut" / "checkpoint.safetensors")
    assert ckpt.step >= 98 and ckpt.epoch < 6  # after epoch 1 (98 steps), before the end
    assert "interrupted" in (tmp_path / "cut" / "summary.txt").read_text()
    resumed = subprocess.run(cmd + ["--resume", str(tmp_path / "cut"), *common],
                             check=False, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run(cmd + ["--out", str(tmp_path / "straight"), *common],
                              check=False, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "cut")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert resumed.stdout.splitlines()[-1] != ""  # finished with its results line
    test_a = json.loads((tmp_path / "straight" / "test_metrics.json").read_text())
    test_b = json.loads((tmp_path / "cut" / "test_metrics.json").read_text())
    assert test_a == test_b


def test_divergence_exits_2_and_keeps_the_checkpoint(tiny_spec, tiny_data, tmp_path, capsys):
    spec = tmp_path / "wild.yaml"
    spec.write_text(tiny_spec.read_text().replace(
        "schedule: {name: cosine, warmup_epochs: 1}",
        "schedule: {name: step, factor: 1.0e41, every: 1}"))
    with pytest.warns(RuntimeWarning):  # NumPy's overflow warnings, expected here
        status = _run(spec, "--data", tiny_data, "--out", tmp_path / "run")
    assert status == 2
    err = capsys.readouterr().err
    assert "the training loss became" in err and "at step" in err and "lower the learning" in err
    assert load_checkpoint(tmp_path / "run" / "checkpoint.safetensors").epoch == 1
    assert "diverged" in (tmp_path / "run" / "summary.txt").read_text()


@pytest.mark.parametrize("argv, message", [
    (["missing.yaml"], "no such file: missing.yaml"),
    (["{spec}", "--lr", "-1"], "--lr must be a positive number"),
    (["{spec}", "--seed", "-3"], "seed"),
    (["{spec}", "--data", "{tmp}/nowhere"], "not found in the folder given with --data"),
    (["{spec}", "--resume", "{tmp}"], "not a cnnc run folder"),
    ([], "no spec given"),
])
def test_bad_input_exits_2_with_a_message(argv, message, tiny_spec, tmp_path, capsys):
    argv = [a.format(spec=tiny_spec, tmp=tmp_path) for a in argv]
    assert _run(*argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_resume_refuses_changed_settings(tiny_spec, tiny_data, tmp_path, capsys):
    _run(tiny_spec, "--data", tiny_data, "--out", tmp_path / "run", "--epochs", "1")
    assert _run("--resume", tmp_path / "run", "--batch-size", "8", "--data", tiny_data) == 2
    assert "batch_size: 16 → 8" in capsys.readouterr().err


def test_out_folder_must_be_new(tiny_spec, tiny_data, tmp_path, capsys):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    assert _run(tiny_spec, "--data", tiny_data, "--out", tmp_path / "used") == 2
    assert "not empty" in capsys.readouterr().err


def test_spec_must_fit_the_dataset(tiny_data, tmp_path, capsys):
    spec = tmp_path / "wrong.yaml"
    spec.write_text("input: [28, 28, 1]\nlayers:\n  - flatten\n  - {dense: 10, activation: "
                    "softmax}\n")
    assert _run(spec, "--data", tiny_data) == 2
    err = capsys.readouterr().err
    assert "the spec's input expects shape (N, 28, 28, 1), received (" in err
    assert ", 12, 12); the dataset's images must match the input layer's shape" in err
    spec.write_text("input: [12, 12, 1]\nlayers:\n  - flatten\n  - {dense: 5, activation: "
                    "softmax}\n")
    assert _run(spec, "--data", tiny_data) == 2
    assert "has 5 units but fashion_mnist has 10 classes" in capsys.readouterr().err


def test_kernels_are_tuned_and_built_before_the_first_epoch(tiny_spec, tiny_data, tmp_path,
                                                            capsys, monkeypatch):
    """Issue 23: first-use tuning ran inside the first batch and was counted as training (the
    epoch's time and rate). Now it is a step of its own before the first epoch, its seconds in
    run.json, and the first epoch builds no kernel."""
    pytest.importorskip("pyopencl")
    from cnnc.backends.opencl import program
    from cnnc.errors import DeviceError
    from cnnc.train import loop

    try:
        from cnnc.backends.opencl.device import select_device

        select_device(None)
    except DeviceError as err:
        pytest.skip(f"no usable OpenCL device: {err}")
    built_in_epochs = []
    real_run = loop.Trainer.run

    def run(self, *args, **kwargs):
        before = sum(len(c.records) for c in program._CACHES.values())
        try:
            return real_run(self, *args, **kwargs)
        finally:
            records = [r for c in program._CACHES.values() for r in c.records]
            built_in_epochs.append([(r.file, r.options) for r in records[before:]])

    monkeypatch.setattr(loop.Trainer, "run", run)
    program.forget_programs()  # every kernel is fetched again: from the disk cache, or built
    out = tmp_path / "run"
    assert _run(tiny_spec, "--data", tiny_data, "--out", out, "--epochs", "1",
                backend="opencl") == 0
    text = capsys.readouterr().out
    kernels = text.index("kernels   tuned and built in")
    assert kernels < text.index("epoch 1/1")
    assert built_in_epochs == [[]], "a kernel was fetched or built inside the epochs"
    record = json.loads((out / "run.json").read_text())
    assert len(record["kernel_seconds"]) == 1 and record["kernel_seconds"][0] >= 0
    # and apart from the training time wherever the run is summed up
    seconds = record["kernel_seconds"][0]
    summary = (out / "summary.txt").read_text()
    assert f"wall time   kernels {seconds:.1f} s (tuned and built before the epochs), training " \
        in summary
