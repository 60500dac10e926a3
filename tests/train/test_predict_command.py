"""`cnnc predict` and `cnnc eval` with weights from a run: class names, formats, errors."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.cli import main
from cnnc.data import load_dataset


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """A spec file and weights trained on the synthetic data for two epochs."""
    from training_spec import TINY_SPEC

    folder = tmp_path_factory.mktemp("trained")
    spec = folder / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    model = cnnc.compile(str(spec), backend="numpy")
    model.fit(data_dir=tiny_data, epochs=2, verbose=0)
    model.save_weights(str(folder / "w.safetensors"))
    return spec, folder / "w.safetensors", model


def _predict(spec, weights, *inputs, extra=()):
    return main(["predict", str(spec), "--weights", str(weights), "--backend", "numpy",
                 *extra, *map(str, inputs)])


def test_predict_arrays_prints_fashion_class_names(trained, tiny_data, tmp_path, capsys):
    spec, weights, model = trained
    images = load_dataset("fashion_mnist", tiny_data).test.images[:3]
    np.save(tmp_path / "three.npy", images)
    assert _predict(spec, weights, tmp_path / "three.npy") == 0
    lines = capsys.readouterr().out.splitlines()
    want = np.argmax(model.predict(images[..., None] / np.float32(255)), axis=1)
    names = load_dataset("fashion_mnist", tiny_data).class_names
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert line.startswith(f"{tmp_path / 'three.npy'}[{i}]")
        assert f"  {names[want[i]]} (" in line and "%)" in line


def test_predict_png_and_top_k(trained, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    spec, weights, _ = trained
    Image.fromarray(np.full((40, 30), 255, np.uint8)).save(tmp_path / "white.png")
    assert _predict(spec, weights, tmp_path / "white.png", extra=("--top", "3")) == 0
    captured = capsys.readouterr()
    assert captured.out.count("%)") == 3
    assert "inverted" in captured.err


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("hello"), "not an image cnnc can read"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros((5, 5))),
     "expects shape (N, 12, 12, 1), received (5, 5)"),
])
def test_predict_bad_input_exits_2(trained, tmp_path, capsys, make, message):
    spec, weights, _ = trained
    target = tmp_path / "bad.png"
    make(target)
    path = target if target.exists() else target.with_suffix(".npy")
    assert _predict(spec, weights, path) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err


def test_weights_of_another_spec_are_refused(trained, tmp_path, capsys):
    _, weights, _ = trained
    other = tmp_path / "other.yaml"
    other.write_text("input: [12, 12, 1]\nlayers:\n  - flatten\n  - {dense: 10, activation: "
                     "softmax}\n")
    assert _predict(other, weights, tmp_path / "x.npy") == 2
    err = capsys.readouterr().err
    assert "do not fit" in err and "Traceback" not in err


def test_eval_reports_accuracy_and_confusion(trained, tiny_data, capsys):
    spec, weights, model = trained
    assert main(["eval", str(spec), "--weights", str(weights), "--backend", "numpy",
                 "--data", str(tiny_data), "--limit", "20"]) == 0
    out = capsys.readouterr().out
    ev = model.evaluate(load_dataset("fashion_mnist", tiny_data).test.images[:20, :, :, None]
                        / np.float32(255), load_dataset("fashion_mnist", tiny_data).test
                        .labels[:20], verbose=0)
    assert f"accuracy {ev.accuracy:.4f} ({ev.correct}/20)" in out
    assert "true \\ predicted" in out and "Ankle boot" in out


def test_eval_missing_weights(trained, capsys):
    spec, _, _ = trained
    assert main(["eval", str(spec), "--weights", "nope.safetensors", "--backend", "numpy"]) == 2
    assert "nope.safetensors: no such weights file" in capsys.readouterr().err
