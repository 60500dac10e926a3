"""The mutation check's pytest plugin: the tests' side, outside cnnc, that plants one bug.

Loaded with `-p mutants` (tests/mutation on PYTHONPATH) by tests/mutation/test_mutations.py and
scripts/mutation_check.py; CNNC_MUTANT names the mutant. Each mutant changes cnnc from the
outside, the way a reviewer's plugin would: a function's code object swapped in place (so every
module that imported the function sees the change, whatever it imported it as), or the kernel
source / build options rewritten on their way to the OpenCL compiler (the kernel cache is keyed
by the source and options, so a mutant's binaries never stand in for the real ones). A mutant
that no longer finds what it changes stops the run (exit status 4) rather than pass unchanged.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ENV = "CNNC_MUTANT"
HERE = Path(__file__).resolve().parent  # tests/mutation, put on the child's PYTHONPATH


class MutantStale(Exception):
    """The code a mutant changes is not there any more: update the mutant."""


def _swap_code(func: types.FunctionType, replacement: types.FunctionType, **names) -> None:
    """Run `replacement`'s code whenever `func` is called; `names` become globals of func's
    module (the original function among them), which the replacement's code reads."""
    if func.__code__.co_freevars or replacement.__code__.co_freevars:
        raise MutantStale(f"{func.__qualname__}: closures cannot be swapped")
    func.__globals__.update(names)
    func.__code__ = replacement.__code__


def _copy(func: types.FunctionType) -> types.FunctionType:
    return types.FunctionType(func.__code__, func.__globals__, func.__name__,
                              func.__defaults__, func.__closure__)


# ---------------------------------------------------------------- the mutants


def pad_odd_before() -> None:
    """Keras' 'same' padding puts the odd pixel after; this puts it before."""
    from cnnc.ir import convpool

    def flipped(n, k, stride, padding, dilation=1):
        if padding != "same":
            return (0, 0)
        out = output_length(n, k, stride, padding, dilation)  # noqa: F821 (convpool's)
        total = max((out - 1) * stride + dilation * (k - 1) + 1 - n, 0)
        return (total - total // 2, total // 2)

    if "total - total // 2" not in _source(convpool.pad_amounts):
        raise MutantStale("cnnc.ir.convpool.pad_amounts changed: check the mutant")
    _swap_code(convpool.pad_amounts, flipped)


def conv2d_flops_half() -> None:
    """conv2d's FLOP count halved (every GFLOP/s figure and the seed model's 179.3 MFLOP)."""
    from cnnc.ir import layers
    from cnnc.ir.ops import OPS

    if OPS["conv2d"].flops is not layers._conv_flops:
        raise MutantStale("conv2d's FLOP rule is no longer cnnc.ir.layers._conv_flops")

    def halved(attrs, shapes, out):
        return _mutant_original_conv_flops(attrs, shapes, out) // 2  # noqa: F821

    _swap_code(layers._conv_flops, halved,
               _mutant_original_conv_flops=_copy(layers._conv_flops))


# gemm.cl's matmul_tn (the dense layer's kernel gradient, and convolution kernel gradients
# run as a GEMM): one character added negates the gradient.
KERNEL_FILE_MARK = "#ifdef MATMUL_TN"
KERNEL_FROM, KERNEL_TO = "ak[r] = a[k * M + col[r]];", "ak[r] = -a[k * M + col[r]];"


def kernel_gemm_tn_sign() -> None:
    """One character changed in a kernel's source as it goes to the compiler."""
    from cnnc.backends.opencl import program
    from cnnc.backends.opencl.kernel_files import kernel_dir

    text = (kernel_dir() / "gemm.cl").read_text()
    if KERNEL_FROM not in text or KERNEL_FILE_MARK not in text:
        raise MutantStale(f"kernels/gemm.cl no longer holds {KERNEL_FROM!r}")
    real = program.build_cached

    def build_cached(context, cl_device, source, *args, **kwargs):
        if KERNEL_FILE_MARK in source:
            source = source.replace(KERNEL_FROM, KERNEL_TO)
        return real(context, cl_device, source, *args, **kwargs)

    program.build_cached = build_cached


def define_pad_left() -> None:
    """A -D constant perturbed between binding and build: conv2d.cl's (and conv2d_rows.cl's,
    few channels' convolutions) left padding PL off by one wherever it is positive (the
    binder's output, as the compiler receives it)."""
    from cnnc.backends.opencl.program import ProgramCache

    real = ProgramCache._build

    def _build(self, file, options):
        if file in ("conv2d.cl", "conv2d_rows.cl"):
            options = tuple(_pad_plus_one(o) for o in options)
        return real(self, file, options)

    ProgramCache._build = _build


def _pad_plus_one(option: str) -> str:
    if option.startswith("-DPL="):
        value = int(option[len("-DPL="):])
        if value > 0:
            return f"-DPL={value - 1}"
    return option


def _source(func) -> str:
    import inspect

    return inspect.getsource(func)


@dataclass(frozen=True)
class Mutant:
    apply: Callable[[], None]
    # pytest arguments selecting a handful of existing tests of which at least one must fail
    # under the mutant (the default suite's check: tests/mutation/test_mutations.py)
    fast: tuple[str, ...]
    # The broader set the full check runs (-m slow; scripts/mutation_check.py)
    full: tuple[str, ...]
    opencl: bool = False  # needs an OpenCL device (its tests skip without one)


# A same-padded strided convolution (PL = 2) through conv2d.cl, and the kernel gradients of
# 5x5 convolutions, which run as gemm.cl's matmul_tn: tests/opencl/op_cases.py.
_OPS = "tests/opencl/test_ops.py"
_CONV_CASE = "conv_stride_3_big_kernel and native"
# matmul_tn's case: dense kernel gradients (a stem's, as _CONV_CASE's, runs conv2d_grad_rows.cl
# on a CPU)
_DENSE_CASE = "dense_stack_dropout and native"

# The broader sets are the test files issue 25 names for each bug (files only, so that an
# older checkout's run can leave out those it did not have yet): for the padding rule every
# test that checks padding or output shapes (hand-worked layers, the PyTorch comparisons, ONNX
# import and export against onnxruntime, the independent oracles, the example specs, the
# OpenCL op cases); for FLOPs every test that prints or pins a FLOP count; for a kernel the op
# cases and the example specs that run it.
_PADDING = (
    "tests/numpy/test_padding_independent.py", "tests/numpy/test_layer_semantics.py",
    "tests/numpy/test_against_pytorch.py", "tests/numpy/test_conv_family_vs_pytorch.py",
    "tests/numpy/test_framework_twins.py", "tests/onnx/test_pytorch_models.py",
    "tests/onnx/test_import_ops.py", "tests/onnx/test_conv_family_onnx.py",
    "tests/onnx/test_onnx_pooling.py", "tests/onnx/test_onnx_export.py",
    "tests/onnx/test_export_padding_independent.py", "tests/ir",
    "tests/frontend/test_example_specs.py", _OPS)
_FLOPS = ("tests/ir", "tests/test_cli_options.py", "tests/frontend/test_summary_cli.py",
          "tests/viz/test_merges_pictures.py", "tests/opencl/test_commands.py")
_KERNEL = (_OPS, "tests/opencl/test_specs.py")

MUTANTS: dict[str, Mutant] = {
    "pad-odd-before": Mutant(
        pad_odd_before,
        fast=("tests/numpy/test_padding_independent.py::test_conv2d_padding_and_shape",),
        full=_PADDING),
    "conv2d-flops-half": Mutant(
        conv2d_flops_half,
        fast=("tests/ir/test_flops_by_hand.py",),
        full=_FLOPS),
    "kernel-gemm-tn-sign": Mutant(
        kernel_gemm_tn_sign,
        fast=(_OPS, "-k", f"test_training_step_matches_numpy and {_DENSE_CASE}"),
        full=_KERNEL, opencl=True),
    "define-pad-left": Mutant(
        define_pad_left,
        fast=(_OPS, "-k", f"test_forward_matches_numpy and {_CONV_CASE}"),
        full=_KERNEL, opencl=True),
}


@dataclass(frozen=True)
class Outcome:
    failed: int  # failed tests and errors
    passed: int
    seconds: float
    status: int  # pytest's exit status
    output: str
    # Each test's outcome by node id ("passed", "failed", "error", "skipped"), from the child's
    # JUnit report: what a count is made of, and which tests a mutant's failures are
    results: dict[str, str] = field(default_factory=dict)


def run(name: str, args: tuple[str, ...], timeout: float = 3600.0,
        stop_at_first: bool = False, root: Path | None = None, python: str | None = None,
        workers: int = 0) -> Outcome:
    """pytest in a child process, from a checkout's root (this one unless `root`: an older
    commit's tests run against the same mutants), with mutant `name` applied (no mutant for
    ""): `workers` pytest-xdist processes (0: serial), no cache written (a mutant's failures
    must not become the next `--lf`), slow tests included only where `args` asks for them.
    `python` must import the cnnc of `root` (its own virtual environment)."""
    import subprocess
    import sys
    import tempfile
    import time

    root = root or HERE.parents[1]
    path = os.environ.get("PYTHONPATH", "")
    env = {**os.environ, ENV: name,
           "PYTHONPATH": str(HERE) + (os.pathsep + path if path else "")}
    with tempfile.TemporaryDirectory(prefix="cnnc-mutant-") as tmp:
        report = Path(tmp) / "junit.xml"
        command = [python or sys.executable, "-m", "pytest", "-n", str(workers),
                   "-p", "mutants", "-p", "no:cacheprovider", "-q", "-rfE",
                   # xunit1 reports each test's file, which names it as pytest does
                   f"--junitxml={report}", "-o", "junit_family=xunit1",
                   *(["-x"] if stop_at_first else []), *args]
        start = time.perf_counter()
        done = subprocess.run(command, check=False, cwd=root, env=env, capture_output=True,
                              text=True, timeout=timeout)
        seconds = time.perf_counter() - start
        results = junit_results(report) if report.exists() else {}
    out = done.stdout + done.stderr
    counts = _summary_counts(out)
    return Outcome(counts["failed"] + counts["error"] + counts["errors"], counts["passed"],
                   seconds, done.returncode, out, results)


def _summary_counts(out: str) -> dict[str, int]:
    import re

    counts = {key: 0 for key in ("failed", "passed", "error", "errors")}
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    for number, key in re.findall(r"(\d+) (failed|passed|errors?)\b", summary):
        counts[key] = int(number)
    return counts


def junit_results(report: Path) -> dict[str, str]:
    """Each test case of a JUnit XML report (junit_family=xunit1) by pytest's node id
    (file::name for module-level tests, file::Class::name in a class; a collection error is
    the file alone), with its outcome; a test reported twice (an error in teardown after a
    pass) keeps the worse outcome."""
    import xml.etree.ElementTree as ET

    rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
    results: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        file = case.get("file") or ""
        parts = (case.get("classname") or "").split(".")
        module = Path(file).stem
        # classname is the module's dotted path, then any classes the test sits in
        classes = parts[parts.index(module) + 1:] if module in parts else []
        name = case.get("name") or ""
        node = "::".join([file, *classes, name]) if file else name
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                break
        if rank[outcome] >= rank.get(results.get(node, "passed"), 0):
            results[node] = outcome
    return results


def split_present(args: tuple[str, ...], root: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A selection's arguments that name paths under `root`, and those that name none (a
    test file an older commit did not have yet); options and their values are kept."""
    kept: list[str] = []
    absent: list[str] = []
    takes_value = False
    for arg in args:
        if takes_value or arg.startswith("-"):
            kept.append(arg)
            takes_value = arg in ("-k", "-m")
            continue
        (kept if (root / arg.split("::")[0]).exists() else absent).append(arg)
    return tuple(kept), tuple(absent)


def covers(selection: tuple[str, ...], node: str) -> bool:
    """Whether a test's node id lies under one of the paths of a selection (options ignored)."""
    file = node.split("::")[0]
    takes_value = False
    for arg in selection:
        if takes_value or arg.startswith("-"):
            takes_value = arg in ("-k", "-m")
            continue
        path = arg.split("::")[0].rstrip("/")
        if "::" in arg and node.startswith(arg):
            return True
        if "::" not in arg and (file == path or file.startswith(path + "/")):
            return True
    return False


def pytest_configure(config) -> None:
    name = os.environ.get(ENV, "")
    if not name:
        return
    if name not in MUTANTS:
        raise pytest.UsageError(f"{ENV}={name!r}: not a mutant; known: {', '.join(MUTANTS)}")
    try:
        MUTANTS[name].apply()
    except MutantStale as err:
        raise pytest.UsageError(f"mutant {name} is stale: {err}") from None


def pytest_report_header(config) -> list[str]:
    name = os.environ.get(ENV, "")
    return [f"mutation check: mutant {name} applied"] if name else []
