"""`cnnc summary`: the Keras-style table, and exit status 2 with one message on bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest
from frontend_helpers import SPECS

from cnnc.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_fashion_summary(capsys):
    status, out, err = run_cli(capsys, "summary", str(SPECS / "fashion.yaml"))
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == 'Network: "fashion"'
    assert "Layer (type)" in lines[2] and "Output Shape" in lines[2] and "FLOPs" in lines[2]
    rows = {line.split()[0]: line for line in lines if line.split() and "(" in line}
    assert "(None, 28, 28, 64)" in rows["conv2d"] and "3,200" in rows["conv2d"]
    assert "(None, 10)" in rows["dense_2"] and rows["dense_2"].split()[-2:] == ["650", "1,340"]
    assert "Total params: 1,413,834 (5.39 MB)" in lines
    assert "Trainable params: 1,413,834 (5.39 MB)" in lines
    assert "Non-trainable params: 0 (0.00 B)" in lines
    flops = next(line for line in lines if line.startswith("Forward FLOPs per example: "))
    total = int(flops.split(": ")[1].split()[0].replace(",", ""))
    assert total == sum(int(r.split()[-1].replace(",", "")) for r in rows.values()
                        if r.split()[-1].replace(",", "").isdigit())


def test_dag_summary_shows_connections(capsys):
    status, out, _ = run_cli(capsys, "summary", str(SPECS / "resnet_mini.cnn"))
    assert status == 0 and "Connected to" in out
    add_row = next(line for line in out.splitlines() if line.startswith("add "))
    assert add_row.rstrip().endswith("stem_out, b1_bn")
    assert "Non-trainable params: 288 " in out  # moving mean and variance: 2 x (3x16 + 3x32)


def test_summary_with_ir_dump(capsys):
    status, out, _ = run_cli(capsys, "summary", "--ir", str(SPECS / "lenet5.cnn"))
    assert status == 0
    assert "graph lenet5: 61,706 parameters" in out
    assert "= conv2d(input_layer; conv2d/kernel, conv2d/bias)" in out


BAD = {
    "syntax.cnn": ("input 28x28x1\nrepeat 2 {\n}\n",
                   "syntax.cnn:3:1: unexpected '}'; expected a layer"),
    "layer.cnn": ("input 28x28x1\nconv2e 8 3\n",
                  "layer.cnn:2:1: unknown layer 'conv2e'; did you mean 'conv2d'?"),
    "argument.cnn": ("input 28x28x1\nconv2d 8 3 paddng=same\n",
                     ("argument.cnn:2:12: conv2d: unknown argument 'paddng' for conv2d; did you "
                      "mean 'padding'?")),
    "value.yaml": ("input: [28, 28, 1]\nlayers:\n  - {conv2d: 8, kernel_size: -1}\n",
                   ("value.yaml:3:30: layers[0].kernel_size: Expected a positive integer or a "
                    "pair of positive integers. Received kernel_size=-1.")),
    "shape.cnn": ("input 3x3x256\nconv2d 8 7\n",
                  ("shape.cnn:2:1: conv2d: 7x7 kernel does not fit a 3x3x256 input with padding "
                   "'valid'")),
    "reference.yaml": ("input: [8]\nlayers:\n  - add: {inputs: [input_layer, nowhere]}\n",
                       ("reference.yaml:3:33: layers[0].inputs[1]: unknown layer 'nowhere' in "
                        "the inputs of 'add'")),
    "cycle.cnn": ("input 8\na: dense(b) 4\nb: dense(a) 4\n",
                  "cycle.cnn:2:4: cycle in the layer graph: a -> b -> a"),
    "duplicate.cnn": ("input 8\na: dense 4\na: dense 4\n",
                      ("duplicate.cnn:3:1: duplicate layer name 'a' (first defined at "
                       "duplicate.cnn:2:1)")),
    "empty.cnn": ("# nothing here\n",
                  "empty.cnn: the network is empty: it needs an input and at least one layer"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_spec_exits_2_with_one_message(capsys, tmp_path, monkeypatch, name):
    text, headline = BAD[name]
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text)
    status, out, err = run_cli(capsys, "summary", name)
    assert status == 2 and out == ""
    assert err.splitlines()[0] == headline
    assert "Traceback" not in err
    if ":" in headline.split()[0].rstrip(":"):  # located in the text: source line and caret
        assert len(err.splitlines()) == 3 and err.splitlines()[2].strip() == "^"


def test_missing_file(capsys):
    status, _out, err = run_cli(capsys, "summary", "specs/missing.yaml")
    assert status == 2
    assert err.startswith("cnnc: error: no such file: specs/missing.yaml")
    assert len(err.strip().splitlines()) == 1


def test_the_command_line_program_itself(tmp_path):
    """The real entry point: status 2, one message on stderr, no traceback."""
    bad = tmp_path / "bad.cnn"
    bad.write_text("input 8\ndense 0\n")
    proc = subprocess.run([sys.executable, "-m", "cnnc.cli", "summary", str(bad)],
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines()[0] == (
        f"{bad}:2:7: dense: Expected a strictly positive integer. Received units=0.")
    assert "Traceback" not in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "cnnc.cli", "summary", "fashion"],
                        check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert ok.returncode == 0 and "Total params: 1,413,834" in ok.stdout
