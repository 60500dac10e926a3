"""Hostile spec files through `cnnc summary` and `cnnc run`: each refused with a clean message
and exit status 2, within a time limit and a memory budget (see bounded.py for how)."""

from __future__ import annotations

import os

import pytest

MEMORY_MB = 400  # the address-space cap above the server's own size
PEAK_MB = 150  # what a refusal may cost; the probes took 4 GB and more before these checks
SECONDS = 30.0  # generous for a loaded 2-core machine; each takes about a second or less


def _refused(outcome, *needles):
    assert outcome.rc == 2 and not outcome.timed_out, outcome.describe()
    assert "Traceback" not in outcome.stderr, outcome.describe()
    for needle in needles:
        assert needle in outcome.stderr, outcome.describe()
    assert outcome.peak_mb < PEAK_MB, outcome.describe()


def _laughs(levels: int) -> str:
    text = 'input: 28x28x1\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghijklmnop"[:levels - 1]:
        text += f"{name}: &{name} [" + ",".join(["*" + previous] * 9) + "]\n"
        previous = name
    return text + f"layers: *{previous}\n"


CASES = {
    "nul-byte.yaml": (b"network: a\x00\ninput: 28x28x1\nlayers: [flatten]\n", "U+0000"),
    "laughs.yaml": (_laughs(9).encode(), "more than 200,000 values"),
    "deep-lists.yaml": (b"input: 28x28x1\nlayers: " + b"[" * 500 + b"]" * 500,
                        "nest more than 32 deep"),
    "deep-repeat.cnn": (b"input 28x28x1\n" + b"repeat 1 { " * 490 + b"flatten" + b" }" * 490,
                        "nest more than 32 deep"),
    "million-lines.cnn": (b"input 28x28x1\nflatten\n" + b"dense 10\n" * 1_000_000,
                          "more than the 4.19 MB cnnc reads"),
    "half-million-statements.cnn": (b"input 28x28x1\nflatten\n" + b"dense 3;" * 500_000,
                                    "statements; cnnc reads at most 12,000"),
    "flood.yaml": (b"input: 28x28x1\nlayers:\n" + b"- flatten\n" * 300_000,
                   "more than 200,000 values"),
    "absurd-filters.cnn": (b"input 28x28x1\nconv2d 99999999999 3\n",
                           "more than any device holds"),
    "absurd-input.cnn": (b"input 1000000x1000000x3\nconv2d 8 3\n", "12 TB as float32"),
    "absurd-kernel.yaml": (b"input: 100000x100000x3\nlayers: [flatten, {dense: 10}]\n",
                           "its kernel of shape 30000000000x10"),
    "huge-int.yaml": (b"input: 28x28x1\nlayers: [flatten, {dense: " + b"9" * 5000 + b"}]\n",
                      "invalid YAML value"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_spec_files(bounded, tmp_path, name):
    content, needle = CASES[name]
    path = tmp_path / name
    path.write_bytes(content)
    _refused(bounded.run(["summary", path], memory_mb=MEMORY_MB, timeout_s=SECONDS), needle)


def test_absurd_sizes_are_refused_by_run_and_compile(bounded, tmp_path):
    path = tmp_path / "absurd.cnn"
    path.write_text("input 28x28x1\nconv2d 99999999999 3\nflatten\ndense 10 softmax\n")
    for argv in (["run", path, "--backend", "numpy", "--out", tmp_path / "r"],
                 ["compile", path], ["verify", path]):
        _refused(bounded.run(argv, memory_mb=MEMORY_MB, timeout_s=SECONDS),
                 "cnnc refuses tensors over 1.1 TB")


def test_a_device_file_is_not_read(bounded):
    _refused(bounded.run(["summary", "/dev/zero"], memory_mb=MEMORY_MB, timeout_s=SECONDS),
             "it is a device")


def test_a_fifo_is_not_waited_on(bounded, tmp_path):
    fifo = tmp_path / "spec.cnn"
    os.mkfifo(fifo)
    _refused(bounded.run(["summary", fifo], memory_mb=MEMORY_MB, timeout_s=SECONDS),
             "it is a FIFO")


def test_a_directory_is_not_a_spec(bounded, tmp_path):
    _refused(bounded.run(["summary", tmp_path], memory_mb=MEMORY_MB, timeout_s=SECONDS),
             "is a folder, not a run folder")
