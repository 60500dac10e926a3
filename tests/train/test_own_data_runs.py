"""`cnnc run` and `cnnc predict` on the user's own data: an image folder named by train.dataset or
--data, class names through run.json, the report and predict, exact resume, exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from cnnc.cli import main
from cnnc.testing.own_data import random_images, write_cifar, write_image_folder

pytest.importorskip("PIL.Image", reason="Pillow is not installed")

SPEC = """\
network: rgb
input: [8, 8, 3]
layers:
  - {{conv2d: [4, 3], padding: same, use_bias: false}}
  - batchnorm
  - {{activation: relu}}
  - {{maxpool2d: 2}}
  - flatten
  - {{dropout: 0.25}}
  - {{dense: {classes}, activation: softmax}}
train:
  dataset: {dataset}
  epochs: 3
  batch_size: 8
  optimizer: {{name: adam, learning_rate: 0.01}}
  validation_split: 0.2
  augment: {{shift: 1, flip: true}}
  seed: 3
"""


def _spec(folder, dataset="fashion_mnist", classes=3):
    path = folder / "rgb.yaml"
    path.write_text(SPEC.format(dataset=dataset, classes=classes))
    return path


def _run(*argv, backend="numpy") -> int:
    return main(["run", *map(str, argv), "--backend", backend, "--progress", "off"])


def _weights(folder):
    return load_file(str(folder / "weights.safetensors"))


def test_image_folder_from_the_spec_names_classes_everywhere(tmp_path, monkeypatch, capsys):
    write_image_folder(tmp_path / "pets", per_class=8)
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, dataset="./pets")
    assert _run(spec, "--out", "run", "--epochs", "1") == 0
    out = capsys.readouterr().out
    assert "data      image folder from pets (train.dataset)" in out
    assert "images    train 19, test 5, 3 classes, fitted to 8x8 by resize, RGB" in out
    assert "columns: 0=cat, 1=dog, 2=eel" in out
    run = tmp_path / "run"
    record = json.loads((run / "run.json").read_text())
    assert record["class_names"] == ["cat", "dog", "eel"]
    assert record["data"] == str((tmp_path / "pets").resolve())
    assert record["examples"] == {"train": 15, "validation": 4, "test": 5}
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["class_names"] == ["cat", "dog", "eel"]
    assert "  eel " in (run / "summary.txt").read_text()
    assert "eel" in (run / "report.html").read_text()

    # predict: a folder of images, names from the run's run.json, top classes as JSON.
    capsys.readouterr()
    assert main(["predict", str(spec), "--weights", str(run / "weights.safetensors"),
                 "--backend", "numpy", "--json", "--top", "3", "pets/dog"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 and rows[0]["input"].endswith("dog/000.png")
    assert {t["name"] for t in rows[0]["top"]} == {"cat", "dog", "eel"}
    assert abs(sum(t["probability"] for t in rows[0]["top"]) - 1.0) < 1e-5
    # ... the same images as the training pipeline decoded them: the model's own figures.
    import cnnc
    from cnnc.data.dataset import load_dataset

    model = cnnc.compile(str(spec), backend="numpy")
    model.load_weights(str(run / "weights.safetensors"))
    files = sorted((tmp_path / "pets" / "dog").iterdir())
    from cnnc.data.folder import decode_image

    x = np.stack([decode_image(f, (8, 8, 3), "resize") for f in files]) / np.float32(255)
    probs = model.predict(x.astype(np.float32))
    for row, p in zip(rows, probs):
        assert row["top"][0]["class"] == int(np.argmax(p))
        assert row["top"][0]["probability"] == pytest.approx(float(p.max()), rel=1e-5)
    assert load_dataset("./pets", tmp_path / "pets", input_shape=(8, 8, 3)).class_names == \
        ("cat", "dog", "eel")


def test_resume_on_an_image_folder_is_bit_identical(tmp_path, capsys, backend):
    data = write_image_folder(tmp_path / "pets", per_class=8)
    spec = _spec(tmp_path)
    assert _run(spec, "--data", data, "--out", tmp_path / "straight", backend=backend) == 0
    assert _run(spec, "--data", data, "--out", tmp_path / "part", "--epochs", "1",
                backend=backend) == 0
    assert main(["run", "--resume", str(tmp_path / "part"), "--epochs", "3"]) == 0
    assert "resuming  from the checkpoint after epoch 1" in capsys.readouterr().out
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_npz_and_cifar_through_data(tmp_path, capsys):
    x = random_images(40, (8, 8, 3), seed=1)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(40) % 3, x_test=x[:9],
             y_test=np.arange(9) % 3, class_names=np.array(["a", "b", "c"]))
    spec = _spec(tmp_path)
    assert _run(spec, "--data", tmp_path / "d.npz", "--out", tmp_path / "n", "--epochs", "1") == 0
    assert json.loads((tmp_path / "n" / "run.json").read_text())["class_names"] == ["a", "b", "c"]
    capsys.readouterr()
    # predict on the .npz (its x_test) prints the class names by name.
    assert main(["predict", str(spec), "--weights", str(tmp_path / "n" / "weights.safetensors"),
                 "--backend", "numpy", str(tmp_path / "d.npz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 9 and all(line.split()[1] in ("a", "b", "c") for line in lines)

    cifar, _ = write_cifar(tmp_path / "c.tar.gz", per_batch=4)
    spec32 = tmp_path / "c.yaml"
    spec32.write_text(SPEC.format(dataset="fashion_mnist", classes=10).replace("[8, 8, 3]",
                                                                               "[32, 32, 1]"))
    assert _run(spec32, "--data", cifar, "--out", tmp_path / "c", "--epochs", "1") == 0
    assert "data      CIFAR-10 (binary) from" in capsys.readouterr().out


def test_corrupt_image_exits_2_with_its_path_and_skip_lists_it(tmp_path, capsys):
    data = write_image_folder(tmp_path / "pets", per_class=8)
    (data / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    spec = _spec(tmp_path)
    assert _run(spec, "--data", data, "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert "dog/broken.png: not an image cnnc can read" in err and "bad-images skip" in err
    assert _run(spec, "--data", data, "--out", tmp_path / "r", "--epochs", "1",
                "--bad-images", "skip") == 0
    out = capsys.readouterr().out
    assert "skipped   1 unreadable file(s)" in out and "dog/broken.png" in out
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert len(record["skipped"]) == 1 and record["train"]["bad_images"] == "skip"


def test_more_classes_than_the_network_outputs_exits_2(tmp_path, capsys):
    data = write_image_folder(tmp_path / "pets", per_class=6)
    spec = _spec(tmp_path, classes=2)
    assert _run(spec, "--data", data, "--out", tmp_path / "r") == 2
    assert "has 2 units but" in capsys.readouterr().err


def test_an_unknown_dataset_name_exits_2(tmp_path, capsys):
    assert _run(_spec(tmp_path, dataset="cifar"), "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert "train.dataset" in err and "or the path of your own data" in err


def test_python_network_fit_evaluate_and_mistakes_on_an_image_folder(tmp_path):
    import cnnc

    data = write_image_folder(tmp_path / "pets", per_class=8)
    net = cnnc.Network("py", input=(8, 8, 3))
    net.conv2d(4, 3, padding="same", activation="relu")
    net.flatten()
    net.dense(3, activation="softmax")
    net.train(dataset=str(data), epochs=2, batch_size=8, image_fit="crop", seed=1)
    model = cnnc.compile(net, backend="numpy")
    history = model.fit(verbose=0)
    assert len(history.epochs) == 2
    ev = model.evaluate(verbose=0)
    assert ev.class_names == ("cat", "dog", "eel") and ev.count == 5
    fig = model.show_mistakes()
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts) + " ".join(
        ax.get_title() for ax in fig.axes)
    wrong = ev.count - ev.correct
    assert wrong == 0 or any(n in texts for n in ("cat", "dog", "eel"))


def test_eval_command_on_own_data(tmp_path, capsys):
    data = write_image_folder(tmp_path / "pets", per_class=8)
    spec = _spec(tmp_path)
    assert _run(spec, "--data", data, "--out", tmp_path / "r", "--epochs", "1") == 0
    capsys.readouterr()
    assert main(["eval", str(spec), "--weights", str(tmp_path / "r" / "weights.safetensors"),
                 "--backend", "numpy", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "(5/5)" in out or "/5)" in out
    assert "eel" in out


def test_streamed_training_matches_in_memory_bit_for_bit(tmp_path, capsys, backend):
    data = write_image_folder(tmp_path / "pets", per_class=8)
    spec = _spec(tmp_path)
    streamed = tmp_path / "s.yaml"
    streamed.write_text(spec.read_text().replace("  seed: 3\n", "  seed: 3\n  stream: true\n"))
    assert _run(spec, "--data", data, "--out", tmp_path / "memory", backend=backend) == 0
    assert _run(streamed, "--data", data, "--out", tmp_path / "disk", "--epochs", "2",
                backend=backend) == 0
    assert "training images streamed from a temporary file" in capsys.readouterr().out
    assert main(["run", "--resume", str(tmp_path / "disk"), "--epochs", "3"]) == 0
    a, b = _weights(tmp_path / "memory"), _weights(tmp_path / "disk")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
