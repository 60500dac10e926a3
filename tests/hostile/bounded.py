"""Run `cnnc` commands on hostile inputs under a memory cap and a time limit, and measure them.

A server process imports cnnc once (about a second on a loaded 2-core machine), then runs each
command in a forked child: the child caps its address space (RLIMIT_AS, the server's size plus
the case's budget), arms an alarm for its time limit, sends stdout and stderr to files and calls
cnnc.cli.main. The server reaps it with wait4, which gives the child's peak resident memory. So
a case costs its own run time, and a regression shows as a timeout, a kill, an "out of memory"
(the cap makes a runaway allocation fail fast), or a peak over the case's budget.

    with BoundedCnnc() as cnnc:
        out = cnnc.run(["summary", "x.cnn"], memory_mb=200, timeout_s=10)
        out.rc, out.stderr, out.seconds, out.peak_mb, out.timed_out
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import final

HERE = Path(__file__).resolve().parent


@dataclass
class Outcome:
    rc: int | None  # the exit status; None when killed by a signal
    signal: int | None
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float  # peak resident memory above what the server held when it forked
    timed_out: bool

    def describe(self) -> str:
        return (f"rc={self.rc} signal={self.signal} timed_out={self.timed_out} "
                f"{self.seconds:.1f}s +{self.peak_mb:.0f}MB\nstderr: {self.stderr[-1500:]}"
                f"\nstdout: {self.stdout[-500:]}")


@final
class BoundedCnnc:
    """A client of the server below; a context manager that starts and stops it."""

    def __init__(self, env: dict[str, str] | None = None):
        self.env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                    "CNNC_OFFLINE": "1", **(env or {})}
        self.env.pop("CNNC_DATA", None)  # datasets only where a test names them
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> BoundedCnnc:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "bounded.py"), "--serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=self.env)
        ready = self.proc.stdout.readline()
        assert ready.strip() == "ready", f"the bounded-run server did not start: {ready!r}"
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)

    def run(self, argv: list[str], *, memory_mb: int, timeout_s: float,
            cwd: str | os.PathLike | None = None, fsize_kb: int | None = None,
            plant: tuple[str, int] | None = None, kill_after_s: float | None = None
            ) -> Outcome:
        """Run `cnnc ARGV...`. fsize_kb caps the size of any file written (RLIMIT_FSIZE);
        plant=(mode, k) makes the process SIGKILL itself there (planted_kills.py);
        kill_after_s has the server SIGKILL it after that many seconds."""
        request = {"argv": [str(a) for a in argv], "memory_mb": memory_mb,
                   "timeout_s": timeout_s, "cwd": str(cwd) if cwd else None,
                   "fsize_kb": fsize_kb, "plant": plant, "kill_after_s": kill_after_s}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return Outcome(**json.loads(self.proc.stdout.readline()))


# ------------------------------------------------------------------ the server


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(request: dict, out_path: str, err_path: str) -> None:
    """In the forked child: cap, redirect, run cnnc's main, exit with its status."""
    try:
        limit = _vm_bytes() + request["memory_mb"] * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        for fd, path in ((1, out_path), (2, err_path)):
            target = os.open(path, os.O_WRONLY | os.O_TRUNC)
            os.dup2(target, fd)
            os.close(target)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        if request["cwd"]:
            os.chdir(request["cwd"])
        if request.get("fsize_kb"):  # a file-size cap: writes past it fail as on a full disk
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            cap = request["fsize_kb"] * 1024
            resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, request["timeout_s"])
        sys.argv = ["cnnc", *request["argv"]]
        if request.get("plant"):
            from planted_kills import plant

            plant(*request["plant"])
        from cnnc.cli import main

        status = main(request["argv"])
    except SystemExit as stop:  # argparse's own errors exit with 2
        status = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # noqa: BLE001 (a raw traceback: what these tests exist to catch)
        import traceback

        traceback.print_exc()
        status = 99
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def serve() -> None:
    # Import everything a command may need once, so that each forked child starts warm.
    import cnnc
    import cnnc.cli

    cnnc.cli.build_parser()
    import cnnc.data.images
    import cnnc.train.session

    # Build what is built lazily on first use (the DSL parser, the passes' tables), once.
    graph = cnnc.load_spec("input 4x4x1\nflatten\ndense 2 softmax\n")
    cnnc.load_spec("input: [4, 4, 1]\nlayers: [flatten]\n")
    cnnc.compile(graph, backend="numpy").predict(__import__("numpy").zeros((1, 4, 4, 1), "float32"))

    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        with tempfile.TemporaryDirectory() as folder:
            out_path, err_path = os.path.join(folder, "out"), os.path.join(folder, "err")
            for path in (out_path, err_path):
                open(path, "w").close()
            base = _rss_mb()
            start = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                _child(request, out_path, err_path)
            kill_at = request.get("kill_after_s")
            if kill_at is None:
                _, status, usage = os.wait4(pid, 0)
            else:
                while True:
                    done, status, usage = os.wait4(pid, os.WNOHANG)
                    if done:
                        break
                    if time.perf_counter() - start >= kill_at:
                        os.kill(pid, signal.SIGKILL)
                        _, status, usage = os.wait4(pid, 0)
                        break
                    time.sleep(0.002)
            seconds = time.perf_counter() - start
            with open(out_path, errors="replace") as f:
                stdout = f.read()
            with open(err_path, errors="replace") as f:
                stderr = f.read()
        killed = os.WIFSIGNALED(status)
        sig = os.WTERMSIG(status) if killed else None
        outcome = {
            "rc": None if killed else os.WEXITSTATUS(status), "signal": sig,
            "stdout": stdout, "stderr": stderr, "seconds": seconds,
            "peak_mb": max(0.0, usage.ru_maxrss / 1024 - base),
            "timed_out": sig == signal.SIGALRM,
        }
        print(json.dumps(outcome), flush=True)


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
