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


def _long_spec(folder, layers: int = 3000):
    spec = folder / "long.cnn"
    spec.write_text("input 8x8x1\nflatten\n" + "dense 8 relu\n" * layers)
    return spec


def test_ctrl_c_during_a_command_exits_130_with_its_message(tmp_path):
    """Issue 25: the delays above may all land after a fast machine has finished (exit 0
    passes). Here the command's own time is measured first, and the interrupt lands a third
    of the way into it: it must be interrupted, status 130 and one line."""
    spec = _long_spec(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "summary", "--ir", str(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "loaded"
    start = time.perf_counter()
    proc.communicate(timeout=300)
    took = time.perf_counter() - start
    assert proc.returncode == 0
    assert took > 0.05, f"the command took {took:.3f} s: too short to interrupt; enlarge it"
    done = _interrupted_after(took / 3, "summary", "--ir", str(spec))
    assert done.returncode == 130, (took, done.returncode, done.stderr)
    assert done.stderr.strip() == "cnnc: interrupted"


def test_ctrl_c_as_the_command_exits_leaves_its_status(tmp_path):
    """Ctrl-C once the command's output is complete (its stdout closed: the interpreter is
    shutting down) neither kills it by the signal (status -2, no message) nor prints a
    traceback: the command's own status stands."""
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, "summary", "lenet5"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = proc.stdout.read()  # to EOF: the process has closed its stdout
        assert "Total params" in out
        while proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                break
            time.sleep(0.001)
        err = proc.stderr.read()
        proc.wait(timeout=60)
        assert proc.returncode == 0, (proc.returncode, err)
        assert "Traceback" not in err, err
