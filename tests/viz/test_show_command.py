"""`cnnc show`: files named after the network, printed; one clear line (exit 2) on mistakes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from png_checks import assert_drawn, load_png

from cnnc.cli import main


@pytest.fixture
def weights(small_model, tmp_path):
    path = tmp_path / "weights.safetensors"
    small_model.save_weights(str(path))
    return path


def test_filters_and_maps_write_pngs_of_the_printed_size(spec_file, weights, small_data,
                                                         tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["show", str(spec_file), "--weights", str(weights), "filters", "conv2d_1",
                 "--channel", "norm"]) == 0
    assert main(["show", str(spec_file), "maps", "test:3", "--weights", str(weights),
                 "--data", str(small_data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "wrote small-filters-conv2d_1.png", "wrote small-maps-test3.png"]
    for line in lines:
        name = line.split()[1]
        w, h = map(int, line.split("(")[1].split()[0].split("x"))
        pixels = load_png(tmp_path / name)
        assert pixels.shape[:2] == (h, w)
        assert_drawn(pixels)


def test_out_names_the_file(spec_file, weights, tmp_path, capsys):
    out = tmp_path / "pictures" / "first.png"
    out.parent.mkdir()
    assert main(["show", str(spec_file), "--weights", str(weights), "--out", str(out),
                 "filters"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} (") and out.is_file()


@pytest.mark.parametrize("argv, message", [
    ([], "cnnc: error: nothing to show"),
    (["filters"], "cnnc: error: filters draws trained weights: give --weights FILE"),
    (["--weights", "missing.safetensors", "filters"],
     "cnnc: error: missing.safetensors: no such weights file"),
    (["--weights", "W", "filters", "flatten"],
     "cnnc: error: layer 'flatten' is a Flatten layer; filters are drawn for convolutions"),
    (["--weights", "W", "maps", "test:1000"],
     "cnnc: error: 'test:1000': the fashion_mnist test set has 40 images (0..39)"),
    (["--weights", "W", "maps", "nowhere.png"], "cnnc: error: nowhere.png: no such file"),
    (["--graph", "--out", "x", "filters"],
     "cnnc: error: --out names one picture; ask for --graph and for filters in two commands"),
])
def test_mistakes_are_one_message_and_status_2(spec_file, weights, small_data, argv, message,
                                               capsys):
    argv = [str(weights) if a == "W" else a for a in argv]
    status = main(["show", str(spec_file), *argv, "--data", str(small_data)]
                  if "maps" in argv else ["show", str(spec_file), *argv])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_headless_without_a_display(spec_file, weights, tmp_path):
    """A fresh process with no $DISPLAY and an interactive matplotlib backend asked for
    still draws, and never loads pyplot."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MPLBACKEND"] = "TkAgg"
    code = ("import sys; from cnnc.cli import main; status = main(sys.argv[1:]); "
            "assert 'matplotlib.pyplot' not in sys.modules; sys.exit(status)")
    done = subprocess.run([sys.executable, "-c", code, "show", str(spec_file), "--weights",
                           str(weights), "filters", "--out", str(tmp_path / "f.png")],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert_drawn(load_png(Path(tmp_path / "f.png")))
