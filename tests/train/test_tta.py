"""Test-time augmentation (train.tta, `cnnc eval --tta`): views, averages, runs and settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from training_spec import TINY_SPEC

import cnnc
from cnnc.cli import main
from cnnc.errors import SpecError
from cnnc.ir.train_config import parse_train_config
from cnnc.train.loop import LabelledData, evaluate_arrays
from cnnc.train.tta import predict_averaged, shifted, views

TTA_SPEC = TINY_SPEC + "  tta: flip\n"


def _images(n: int = 20, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 12, 12, 1), dtype=np.float32)


def _reference_shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[y, x] = in[y - dy, x - dx], zero outside: by padding, not by tta.py's slices."""
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return padded[:, 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


def test_a_shift_moves_pixels_and_fills_with_zeros():
    x = np.arange(1, 13, dtype=np.float32).reshape(1, 3, 4, 1)  # rows 1-4, 5-8, 9-12
    assert shifted(x, 0, 1)[0, :, :, 0].tolist() == [[0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11]]
    assert shifted(x, -1, 0)[0, :, :, 0].tolist() == [[5, 6, 7, 8], [9, 10, 11, 12],
                                                      [0, 0, 0, 0]]
    assert shifted(x, 1, -1)[0, :, :, 0].tolist() == [[0, 0, 0, 0], [2, 3, 4, 0],
                                                      [6, 7, 8, 0]]
    flip = list(views(x, "flip"))
    assert len(flip) == 2 and flip[1][0, 0, :, 0].tolist() == [4, 3, 2, 1]


def test_flip_shift_makes_ten_views_each_shift_with_its_mirror():
    x = _images(3)
    got = list(views(x, "flip_shift"))
    shifts = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
    want = [v for dy, dx in shifts for s in [_reference_shift(x, dy, dx)]
            for v in (s, s[:, :, ::-1])]
    assert len(got) == 10
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def test_flip_averages_the_image_and_its_mirror(backend):
    model = cnnc.compile(TTA_SPEC, backend=backend)
    x = _images(20)
    plain = np.asarray(model.predict(x), np.float64)
    mirror = np.asarray(model.predict(np.ascontiguousarray(x[:, :, ::-1])), np.float64)
    want = (plain + mirror) / 2
    # batch 8 over 20 rows: the last batch is short, as a dataset's usually is.
    got = predict_averaged(model, x, "flip", batch_size=8)
    assert got.shape == (20, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert np.abs(want - plain).max() > 1e-3  # the mirror changes the outputs: not a no-op
    assert np.array_equal(got, predict_averaged(model, x, "flip", batch_size=8))  # determinism


def test_flip_shift_averages_ten_predictions(backend):
    model = cnnc.compile(TTA_SPEC, backend=backend)
    x = _images(6)
    preds = [np.asarray(model.predict(np.ascontiguousarray(v)), np.float64)
             for dy, dx in [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
             for s in [_reference_shift(x, dy, dx)] for v in (s, s[:, :, ::-1])]
    np.testing.assert_allclose(predict_averaged(model, x, "flip_shift", batch_size=32),
                               np.mean(preds, axis=0), rtol=1e-6, atol=1e-7)


def test_evaluation_under_tta_is_the_averaged_outputs_evaluation(backend):
    model = cnnc.compile(TTA_SPEC, backend=backend)
    x, labels = _images(24, seed=2), np.arange(24) % 10
    ev = evaluate_arrays(model, LabelledData(x, labels), "sparse_categorical_crossentropy",
                         tta="flip")
    pred = (np.asarray(model.predict(x), np.float64)
            + np.asarray(model.predict(np.ascontiguousarray(x[:, :, ::-1])), np.float64)) / 2
    assert ev.correct == int(np.sum(np.argmax(pred, axis=1) == labels))
    p = pred / pred.sum(axis=1, keepdims=True)
    assert ev.loss == pytest.approx(float(np.mean(-np.log(p[np.arange(24), labels]))), rel=1e-5)
    assert ev.tta == "flip" and ev.to_dict()["tta"] == "flip"


def _run(spec, data, out, *extra) -> int:
    return main(["run", str(spec), "--data", str(data), "--out", str(out), "--backend", "numpy",
                 "--progress", "off", "--epochs", "1", "--limit", "48", *map(str, extra)])


def test_a_run_with_tta_trains_the_same_and_reports_averaged_figures(tiny_data, tmp_path,
                                                                     capsys, monkeypatch):
    from cnnc.train.session import RunSession

    # The pictures take most of a run's time here and show nothing of tta's.
    monkeypatch.setattr(RunSession, "write_report", lambda self: None)
    plain_spec, tta_spec = tmp_path / "plain.yaml", tmp_path / "tta.yaml"
    plain_spec.write_text(TINY_SPEC)
    tta_spec.write_text(TTA_SPEC)
    assert _run(plain_spec, tiny_data, tmp_path / "plain") == 0
    assert _run(tta_spec, tiny_data, tmp_path / "tta") == 0
    out = capsys.readouterr().out
    assert "test-time augmentation flip (validation and test)" in out
    from safetensors.numpy import load_file

    a = load_file(str(tmp_path / "plain" / "weights.safetensors"))
    b = load_file(str(tmp_path / "tta" / "weights.safetensors"))
    assert all(np.array_equal(a[k], b[k]) for k in a)  # never used in training
    test = json.loads((tmp_path / "tta" / "test_metrics.json").read_text())
    assert test["tta"] == "flip" and "tta" not in json.loads(
        (tmp_path / "plain" / "test_metrics.json").read_text())
    assert "(test-time augmentation flip)" in (tmp_path / "tta" / "summary.txt").read_text()

    # The figures are those of the averaged outputs of the saved weights.
    model = cnnc.compile(TINY_SPEC, backend="numpy")
    model.load_weights(str(tmp_path / "tta" / "weights.safetensors"))
    from cnnc.data.dataset import load_dataset, to_inputs

    ds = load_dataset("fashion_mnist", tiny_data)
    x = to_inputs(ds.test.images, (12, 12, 1))
    pred = (np.asarray(model.predict(x), np.float64)
            + np.asarray(model.predict(np.ascontiguousarray(x[:, :, ::-1])), np.float64)) / 2
    assert test["correct"] == int(np.sum(np.argmax(pred, axis=1) == ds.test.labels))
    xv = to_inputs(ds.train.images[-32:], (12, 12, 1))  # validation_size 32: the last 32
    pv = (np.asarray(model.predict(xv), np.float64)
          + np.asarray(model.predict(np.ascontiguousarray(xv[:, :, ::-1])), np.float64)) / 2
    history = json.loads((tmp_path / "tta" / "metrics.json").read_text())
    assert history[-1]["val_accuracy"] == pytest.approx(
        float(np.mean(np.argmax(pv, axis=1) == ds.train.labels[-32:])))

    # cnnc eval on the plain run folder: --tta flip gives the tta run's figure (same weights),
    # and --split validation the last epoch's validation figure.
    capsys.readouterr()
    folder = str(tmp_path / "plain")
    assert main(["eval", folder, "--tta", "flip", "--data", str(tiny_data)]) == 0
    text = capsys.readouterr().out
    assert (f"accuracy {test['accuracy']:.4f} ({test['correct']}/48)" in text
            and "(test-time augmentation flip)" in text)
    assert main(["eval", folder, "--tta", "flip", "--split", "validation",
                 "--data", str(tiny_data)]) == 0
    text = capsys.readouterr().out
    assert (f"validation fashion_mnist: accuracy {history[-1]['val_accuracy']:.4f} "
            f"({round(history[-1]['val_accuracy'] * 32)}/32)") in text


def test_eval_refuses_a_validation_split_the_spec_does_not_hold_out(tiny_data, tmp_path,
                                                                   capsys):
    spec = tmp_path / "none.yaml"
    spec.write_text(TINY_SPEC.replace("  validation_size: 32\n", ""))
    model = cnnc.compile(str(spec), backend="numpy")
    model.save_weights(str(tmp_path / "w.safetensors"))
    code = main(["eval", str(spec), "--weights", str(tmp_path / "w.safetensors"),
                 "--backend", "numpy", "--data", str(tiny_data), "--split", "validation"])
    assert code == 2
    assert "holds out no validation examples" in capsys.readouterr().err


EXPECTED = "train.tta: Expected one of 'none', 'flip', 'flip_shift'. Received "


@pytest.mark.parametrize("value,tail", [
    ("flp", "tta='flp' (did you mean 'flip'?)"),
    (True, "tta=True (write tta: flip)"),
    (2, "tta=2"),
])
def test_bad_tta_values_are_refused_with_their_key(value, tail):
    with pytest.raises(SpecError) as info:
        parse_train_config({"tta": value})
    assert info.value.headline() == EXPECTED + tail


def test_tta_settings_parse_in_every_front_end_and_write_back():
    assert parse_train_config({"tta": "FLIP"}).tta == "flip"
    assert parse_train_config({"tta": False}).tta == "none"
    assert parse_train_config({}).tta == "none"
    with pytest.raises(SpecError, match="train.tta: tta flip averages class outputs"):
        parse_train_config({"tta": "flip", "target": "input", "loss": "mse"})
    dsl = ("network t\ninput 12x12x1\nconv2d 4 3\nflatten\ndense 10 softmax\n"
           "train {\n  tta flip_shift\n}\n")
    from cnnc.frontend.spec import load_text
    from cnnc.frontend.writers import to_dsl, to_yaml

    graph = load_text(dsl)
    assert graph.train.tta == "flip_shift"
    assert load_text(to_yaml(graph)).train.tta == "flip_shift"
    assert load_text(to_dsl(graph)).train.tta == "flip_shift"


def test_eval_refuses_an_unknown_tta_on_the_command_line(tiny_spec, capsys):
    with pytest.raises(SystemExit) as info:
        main(["eval", str(tiny_spec), "--weights", "w.safetensors", "--tta", "mirror"])
    assert info.value.code == 2
    assert "--tta: invalid choice: 'mirror'" in capsys.readouterr().err


def test_a_data_parallel_evaluation_averages_the_same_views():
    from cnnc.distributed.evaluation import evaluate_sharded
    from cnnc.testing.threadcomm import ThreadGroup

    model = cnnc.compile(TTA_SPEC, backend="numpy")
    data = LabelledData(_images(15, seed=3), np.arange(15) % 10)
    loss = "sparse_categorical_crossentropy"
    one = evaluate_arrays(model, data, loss, tta="flip")
    plain = evaluate_arrays(model, data, loss)
    got = ThreadGroup(2).run(lambda comm: evaluate_sharded(model, data, loss, comm, tta="flip"))
    for ev in got:  # every rank ends with the one-device figures, 8 + 7 examples averaged
        assert ev.correct == one.correct and ev.tta == "flip"
        assert ev.loss == pytest.approx(one.loss, rel=1e-6)
    assert one.loss != pytest.approx(plain.loss, rel=1e-6)  # the views count
