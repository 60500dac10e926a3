"""Driver qualification: whether an OpenCL device may be used, decided once per (driver, device,
cnnc kernel sources) by a child process, and remembered beside the kernel cache.

A driver can list a device, build a probe kernel and still crash on cnnc's real kernels: pip's
pocl 3.0-rc2 on an AMD Zen 4 passes a probe, then segfaults when asked for a program's binary,
aborts in LLVM ("Do not know how to scalarize this operator's operand!") or returns
INVALID_KERNEL_NAME for conv2d.cl. So no process that matters touches a device before a child
process (`python -m cnnc.qualify`) has built and run cnnc's kernels there:

1. probe: a small kernel using what cnnc's kernels use;
2. networks: a forward pass and training steps of small networks that build every kernel in
   kernels/*.cl (each algorithm the tuner may choose included), each node checked against the
   NumPy reference (the `cnnc verify` machinery);
3. binaries: the programs of step 2 written to a scratch binary cache, as binary_cache.py would;
4. reload: the same networks again from those binaries, checked again.

A child that dies (a signal), hangs (past `timeout`) or reports a failure in steps 1-2 makes
the device unusable, with the stage and the driver's own words as the reason. A hang is tried
once more by the next process before it is believed: a qualification on a machine busy with
other work has been measured at 10-30 minutes on 2 cores, and a remembered hang would refuse
the device for good. One that fails
in steps 3-4 leaves the device usable with the binary cache off: its programs are built from
source. Simulators (Oclgrind) run the probe only, in this process: they are for checking
kernels, not for running networks, and do not crash.

A verdict is a small JSON file named by the SHA-256 of the device's identity (name, vendor,
driver and platform versions) and the kernel sources, in `settings.verdict_dir()` (beside the
kernel cache); a change of either qualifies again.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cnnc import settings
from cnnc.atomic import atomic_write

FORMAT = 1  # bumped when what a verdict means changes: older verdicts are then not read
VERDICT_LINE = "verdict "  # the child's last line on stdout: "verdict {json}"
STAGE_LINE = "stage "  # before each stage: "stage <name>: <what it does>"
# Timeouts in a row after which a hang is the driver's, not a busy machine's.
HANGS_BELIEVED = 2
# Stages after the kernels have run and checked out: a failure there turns binaries off only.
BINARY_STAGES = ("binaries", "reload")

# What to use instead, for a CPU device that failed (a GPU's fix is its vendor's driver).
# Seconds this process has waited for qualifications: `cnnc tune`'s budget is for tuning, and a
# first run after an upgrade (a new kernel version) qualifies first (about a minute, more on a
# busy machine: it took a whole 60 s budget there, leaving nothing tuned).
_waited = 0.0


def seconds_waited() -> float:
    """Seconds this process spent qualifying devices (0 where each verdict was remembered)."""
    return _waited


CPU_FIX = ("use Debian's pocl (`apt-get install pocl-opencl-icd`, which scripts/setup.sh "
           "installs) and uninstall pip's (`pip uninstall pocl-binary-distribution`)")
OTHER_FIX = "update this device's OpenCL driver, or use another device (--device)"


@dataclass(frozen=True)
class Verdict:
    """A device's qualification: usable or not and why, whether its binaries can be cached."""

    usable: bool
    reason: str | None = None  # why not usable (None when usable)
    binaries: bool = True  # False: programs are always built from source on this driver
    binaries_reason: str | None = None
    stage: str | None = None  # the stage that failed
    seconds: float = 0.0  # how long the qualification took
    when: float = 0.0  # time.time() of the qualification
    hangs: int = 0  # timeouts in a row that led to this verdict (0: it did not hang)
    cached: bool = False  # read from the verdict folder, not qualified by this process

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("cached")
        return {"format": FORMAT, **data}

    @staticmethod
    def from_json(data: Any) -> Verdict | None:
        """The verdict in a JSON value, or None if it is not one of this format."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        try:
            return Verdict(
                usable=bool(data["usable"]),
                reason=_text(data.get("reason")),
                binaries=bool(data.get("binaries", True)),
                binaries_reason=_text(data.get("binaries_reason")),
                stage=_text(data.get("stage")),
                seconds=float(data.get("seconds", 0.0)),
                when=float(data.get("when", 0.0)),
                hangs=int(data.get("hangs", 0)),
                cached=True,
            )
        except (KeyError, TypeError, ValueError):
            return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:2000]


# ---------------------------------------------------------------- identity and storage


def kernel_sources_digest() -> str:
    """SHA-256 of every kernel source and header cnnc ships (their names and texts)."""
    from cnnc.backends.opencl.kernel_files import kernel_dir

    digest = hashlib.sha256()
    folder = kernel_dir()
    for path in sorted([*folder.glob("*.cl"), *folder.glob("*.h")]):
        data = path.name.encode() + b"\0" + path.read_bytes()
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def verdict_key(identity: str) -> str:
    """The verdict's file name: the device/driver identity and the kernel sources."""
    digest = hashlib.sha256(f"cnnc-qualification {FORMAT}\n".encode())
    for text in (identity, kernel_sources_digest()):
        data = text.encode()
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def verdict_path(identity: str) -> Path:
    return settings.verdict_dir() / f"{verdict_key(identity)}.json"


def read_verdict(identity: str) -> Verdict | None:
    path = verdict_path(identity)
    try:
        return Verdict.from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def write_verdict(identity: str, verdict: Verdict) -> None:
    """Remember a verdict; a folder that cannot be written costs a qualification next time."""
    from cnnc.errors import CnncError

    path = verdict_path(identity)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (json.dumps(verdict.to_json(), indent=1) + "\n").encode())
    except (OSError, CnncError):
        pass


# ---------------------------------------------------------------- the child process


def child_command(index: str, name: str) -> list[str]:
    """The command qualifying device `index` (whose name must be `name`) in a child process.
    Tests replace it to stand in for a driver that crashes or hangs."""
    return [sys.executable, "-m", "cnnc.qualify", index, "--name", name]


@dataclass(frozen=True)
class ChildResult:
    """What a child process said and how it ended."""

    verdict: dict[str, Any] | None  # its verdict line, if it got that far
    stage: str | None  # the last stage it started, with what that stage does
    returncode: int | None  # None: killed for running too long
    stderr_tail: str


def run_child(command: list[str], timeout: float, env: dict[str, str]) -> ChildResult:
    """Run a qualification child, reading its stage lines; kill its process group on timeout."""
    stage = None
    verdict = None
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, env=env, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            returncode: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            returncode = None
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    for line in (out or "").splitlines():
        if line.startswith(STAGE_LINE):
            stage = line[len(STAGE_LINE):].strip()
        elif line.startswith(VERDICT_LINE):
            try:
                verdict = json.loads(line[len(VERDICT_LINE):])
            except ValueError:
                verdict = None
    return ChildResult(verdict, stage, returncode, stderr[-4000:])


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _driver_words(stderr: str) -> str | None:
    """The line of a dead child's stderr that says what the driver did ('LLVM ERROR: ...')."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for pattern in ("LLVM ERROR", "error:", "Error", "Assertion", "fault"):
        for line in reversed(lines):
            if pattern in line:
                return line[:300]
    return lines[-1][:300] if lines else None


def verdict_of(result: ChildResult, timeout: float, seconds: float) -> Verdict:
    """A child's result as a verdict."""
    stage = result.stage or "starting"
    where = stage.split(":", 1)[-1].strip() if ":" in stage else stage
    stage_name = stage.split(":", 1)[0].strip()
    data = result.verdict
    if data is not None:
        return Verdict(
            usable=bool(data.get("usable")),
            reason=_text(data.get("reason")),
            binaries=bool(data.get("binaries", True)),
            binaries_reason=_text(data.get("binaries_reason")),
            stage=_text(data.get("stage")),
            seconds=seconds,
            when=time.time(),
        )
    if result.returncode is None:
        reason = f"the driver hung: no answer in {timeout:.0f} s while {where}"
    elif result.returncode < 0:
        try:
            sig = signal.Signals(-result.returncode).name
        except ValueError:
            sig = f"signal {-result.returncode}"
        reason = f"the driver crashed ({sig}) while {where}"
    else:
        reason = f"the qualification process exited with status {result.returncode} while {where}"
    words = _driver_words(result.stderr_tail)
    if words:
        reason += f": {words}"
    if stage_name in BINARY_STAGES:  # the kernels ran; only their binaries are not to be had
        return Verdict(usable=True, binaries=False, binaries_reason=reason, stage=stage_name,
                       seconds=seconds, when=time.time())
    return Verdict(usable=False, reason=reason, stage=stage_name, seconds=seconds,
                   when=time.time())


def qualify(index: str, name: str, identity: str, *, timeout: float | None = None,
            fresh: bool = False) -> Verdict:
    """The verdict for a device: remembered, or qualified now in a child process (and then
    remembered). fresh: qualify again whatever is remembered."""
    known = None if fresh else read_verdict(identity)
    if known is not None and not 0 < known.hangs < HANGS_BELIEVED:
        return known
    limit = settings.qualify_timeout() if timeout is None else timeout
    print(f"cnnc: qualifying OpenCL device {index} '{name}': building and running cnnc's "
          f"kernels in a child process, once per driver and kernel version (about a minute)",
          file=sys.stderr, flush=True)
    if known is not None:
        print(f"cnnc: (again: the last qualification got no answer in time, which a busy "
              f"machine can cause as well as a hanging driver; {known.reason})",
              file=sys.stderr, flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnnc-qualify-") as scratch:
        # The child's binary cache is a scratch folder: binaries of a driver not yet trusted
        # never reach the real cache.
        env = {**os.environ, "CNNC_CACHE_DIR": scratch, "CNNC_TUNE": "0"}
        result = run_child(child_command(index, name), limit, env)
    seconds = time.perf_counter() - start
    global _waited
    _waited += seconds
    verdict = verdict_of(result, limit, seconds)
    if result.returncode is None and result.verdict is None:
        verdict = replace(verdict, hangs=(known.hangs if known else 0) + 1)
    write_verdict(identity, verdict)
    return verdict


def fix_for(kind: str) -> str:
    """What to do about a device that failed its qualification."""
    return CPU_FIX if kind == "cpu" else OTHER_FIX
