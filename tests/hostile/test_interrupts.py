"""Ctrl-C at any moment of a `cnnc` command, and a reader that goes away: one line, no traceback.

Ctrl-C while modules load is noted and acted on once they have (cnnc/cli.py): a
KeyboardInterrupt raised inside an import can come out as another error (NumPy's C extensions
turn it into an ImportError). The interpreter's own start, before cnnc's first line runs, is
Python's; so each process here signals that it has loaded cnnc.cli before the clock starts.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

CHILD = (
    "import sys; sys.argv = ['cnnc', *sys.argv[1:]]\n"
    "import cnnc.cli\n"  # installs the Ctrl-C handler, as the `cnnc` script's import does
    "print('loaded', flush=True)\n"
    "sys.exit(cnnc.cli.main(sys.argv[1:]))\n"
)


def _interrupted_after(delay: float, *argv: str) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "loaded"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _check(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 130), (done.returncode, done.stderr)
    if done.returncode == 130:
        assert done.stderr.strip().endswith("cnnc: interrupted"), done.stderr


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.4])  # imports and parsing, then the command
def test_ctrl_c_while_starting(delay):
    _check(_interrupted_after(delay, "summary", "lenet5"))


@pytest.mark.slow
@pytest.mark.parametrize("delay", [i * 0.03 for i in range(40)])
def test_ctrl_c_at_many_moments(delay):
    _check(_interrupted_after(delay, "summary", "--ir", "resnet_mini"))


def test_a_reader_that_goes_away(tmp_path):
    """`cnnc summary --ir BIG | head -1`: more output than a pipe holds, the pipe closed."""
    spec = tmp_path / "long.cnn"
    spec.write_text("input 8x8x1\nflatten\n" + "dense 8 relu\n" * 1500)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "summary", "--ir", str(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"loaded"
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
