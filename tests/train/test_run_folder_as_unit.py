"""A run folder as a unit (issue 23): `cnnc predict|eval|show|export RUN_DIR` take the folder's
spec.yaml and the weights at the run's end, say so, and refuse a folder that is no run or a run
without final weights with the way on; summary, compile, verify, bench and tune take its spec."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from cnnc.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from training_spec import TINY_SPEC

    from cnnc.data.synthetic import write_synthetic_dataset

    base = tmp_path_factory.mktemp("unit")
    data = write_synthetic_dataset(base / "data", train=160, test=48, shape=(12, 12))
    spec = base / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    out = base / "run"
    assert main(["run", str(spec), "--data", str(data), "--out", str(out), "--epochs", "1",
                 "--backend", "numpy", "--progress", "off"]) == 0
    return out, data


def test_predict_and_eval_take_the_run_folder(run_dir, tmp_path, capsys):
    out, data = run_dir
    x = np.random.default_rng(0).random((3, 12, 12, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "x.npy"), "--backend", "numpy",
                 "--json"]) == 0
    done = capsys.readouterr()
    assert f"{out / 'weights.safetensors'} (the weights at the run's end)" in done.err
    assert len(json.loads(done.out)) == 3
    assert main(["eval", str(out), "--data", str(data), "--backend", "numpy"]) == 0
    assert "test" in capsys.readouterr().out
    # Keras' word for it, with the run's own data (run.json) and its weights, stated
    assert main(["evaluate", str(out), "--backend", "numpy"]) == 0
    done = capsys.readouterr()
    assert f"the run's data {data}" in done.err and "accuracy" in done.out


def test_export_and_show_take_the_run_folder(run_dir, tmp_path, capsys):
    pytest.importorskip("onnx")
    out, _ = run_dir
    onnx_file = tmp_path / "m.onnx"
    assert main(["export", str(out), "--out", str(onnx_file)]) == 0
    assert "from " + str(out / "weights.safetensors") in capsys.readouterr().out
    import onnx

    model = onnx.load(str(onnx_file))
    kernel = next(t for t in model.graph.initializer if "kernel" in t.name)
    trained = load_file(str(out / "weights.safetensors"))
    assert any(np.allclose(np.sort(onnx.numpy_helper.to_array(kernel).ravel()),
                           np.sort(w.ravel())) for w in trained.values()
               if w.size == np.prod(kernel.dims))
    assert main(["show", str(out), "filters", "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 0


def test_every_command_that_takes_a_spec_takes_the_run_folder(run_dir, capsys):
    out, _ = run_dir
    assert main(["summary", str(out)]) == 0
    done = capsys.readouterr()
    assert done.out.startswith('Network: "tiny"') and "Total params" in done.out
    assert f"the run folder {out}: {out / 'spec.yaml'}" in done.err
    pytest.importorskip("pyopencl")
    from cnnc.backends.opencl.device import select_device
    from cnnc.errors import DeviceError

    try:
        select_device(None)
    except DeviceError as err:
        pytest.skip(f"no usable OpenCL device: {err}")
    assert main(["compile", str(out), "--plan", "--batch", "2"]) == 0
    assert "tiny: forward pass at batch 2" in capsys.readouterr().out


def test_a_folder_that_is_no_run_and_a_run_without_final_weights(run_dir, tmp_path, capsys):
    assert main(["predict", str(tmp_path), "x.png"]) == 2
    assert "is a folder, not a run folder" in capsys.readouterr().err
    out, _ = run_dir
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("spec.yaml", "run.json"):
        (partial / name).write_text((out / name).read_text())
    assert main(["eval", str(partial)]) == 2
    err = capsys.readouterr().err
    assert "has no final weights" in err and f"cnnc run --resume {partial}" in err


def test_a_run_with_checkpoint_best_stands_for_its_best_weights(run_dir, tmp_path, capsys):
    # A copy of the run folder that also holds what a spec's `checkpoint best` writes.
    import shutil

    out = tmp_path / "run"
    shutil.copytree(run_dir[0], out)
    best = load_file(out / "weights.safetensors")
    best = {k: v * 0 for k, v in best.items()}  # every prediction the same: 1/10 each
    from safetensors.numpy import save_file

    save_file(best, out / "best.safetensors", metadata={"format": "cnnc-weights",
                                                        "network": "tiny"})
    x = np.random.default_rng(0).random((2, 12, 12, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "x.npy"), "--backend", "numpy",
                 "--json"]) == 0
    done = capsys.readouterr()
    assert (f"{out / 'best.safetensors'} (the best epoch's weights, `checkpoint best`; "
            f"--weights {out / 'weights.safetensors'} for the last)") in done.err
