"""The mutation check (issue 25): bugs planted from outside cnnc must fail existing tests.

Each mutant in mutants.py (Keras' odd 'same' pixel moved before, conv2d's FLOP count halved, one
character of gemm.cl changed, conv2d.cl's -D PL constant off by one) runs a handful of the tests
that should catch it, in a child pytest with the plugin loaded, and at least one must fail. The
default suite runs those handfuls; `-m slow` runs each mutant over its broader set of test files
and requires failures there too (scripts/mutation_check.py prints the counts).
"""

from __future__ import annotations

import pytest
from mutants import MUTANTS, run


def _needs_device(name: str) -> None:
    if not MUTANTS[name].opencl:
        return
    from cnnc.errors import DeviceError

    try:
        from cnnc.backends.opencl.device import default_device

        default_device()
    except DeviceError as err:
        pytest.skip(f"no OpenCL device for a kernel mutant: {err}")


def _explain(outcome) -> str:
    return f"exit {outcome.status}; the child's output ends:\n{outcome.output[-3000:]}"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_mutant_fails_a_handful_of_tests(name):
    _needs_device(name)
    outcome = run(name, MUTANTS[name].fast, timeout=600, stop_at_first=True)
    # 1: tests failed (4 would be a stale mutant, 5 nothing collected)
    assert outcome.status == 1 and outcome.failed >= 1, _explain(outcome)


def test_the_handfuls_pass_without_a_mutant():
    """The device-free selections pass on cnnc as it is, so the failures above are the
    mutants' (the OpenCL ones are test_ops.py cases the suite runs unmutated anyway)."""
    args = [a for m in MUTANTS.values() if not m.opencl for a in m.fast]
    assert "-k" not in args, "node ids only: one run takes every selection"
    outcome = run("", tuple(args), timeout=600)
    assert outcome.status == 0 and outcome.failed == 0 and outcome.passed > 0, _explain(outcome)
    # the per-test outcomes the script counts agree with pytest's summary line
    assert list(outcome.results.values()) == ["passed"] * outcome.passed, outcome.results


def test_an_unknown_or_stale_mutant_stops_the_run():
    outcome = run("no-such-mutant", ("tests/ir/test_flops_by_hand.py",), timeout=120)
    assert outcome.status == 4 and "not a mutant" in outcome.output, _explain(outcome)


@pytest.mark.slow(reason="each mutant over its test files: minutes (OpenCL ones rebuild kernels)")
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_mutant_fails_its_broader_set(name):
    _needs_device(name)
    outcome = run(name, MUTANTS[name].full)
    assert outcome.failed >= 1, _explain(outcome)


def test_junit_results_name_tests_as_pytest_does(tmp_path):
    """The per-test outcomes the counts are made of: module and class tests by node id, a
    collection error by its file, an error in teardown after a pass kept as the error."""
    from mutants import junit_results

    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.ir.test_cost" file="tests/ir/test_cost.py" name="test_a"/>'
        '<testcase classname="tests.ir.test_cost" file="tests/ir/test_cost.py" name="test_b[x-1]">'
        '<failure message="m"/></testcase>'
        '<testcase classname="tests.numpy.test_m.TestC" file="tests/numpy/test_m.py" name="test_c">'
        '<skipped message="s"/></testcase>'
        '<testcase classname="tests.ir.test_cost" file="tests/ir/test_cost.py" name="test_a">'
        '<error message="teardown"/></testcase>'
        '<testcase classname="" name="tests.onnx.test_broken"><error message="collect"/>'
        '</testcase></testsuite></testsuites>')
    assert junit_results(report) == {
        "tests/ir/test_cost.py::test_a": "error",
        "tests/ir/test_cost.py::test_b[x-1]": "failed",
        "tests/numpy/test_m.py::TestC::test_c": "skipped",
        "tests.onnx.test_broken": "error"}


def test_selections_keep_their_options_and_leave_out_files_a_checkout_lacks(tmp_path):
    """An older checkout runs the files of a set it has; a test belongs to a set by its path."""
    from mutants import covers, split_present

    (tmp_path / "tests" / "ir").mkdir(parents=True)
    (tmp_path / "tests" / "ir" / "test_cost.py").write_text("")
    args = ("tests/ir", "tests/ir/test_new.py", "-k", "tests/gone and x", "tests/gone.py::t")
    assert split_present(args, tmp_path) == (("tests/ir", "-k", "tests/gone and x"),
                                             ("tests/ir/test_new.py", "tests/gone.py::t"))
    assert covers(("tests/ir",), "tests/ir/test_cost.py::test_a[1]")
    assert not covers(("tests/ir",), "tests/irx/test_cost.py::test_a")
    assert covers(("tests/x.py::test_a",), "tests/x.py::test_a[2]")
    assert not covers(("-k", "tests/ir"), "tests/ir/test_cost.py::test_a")


def _mutation_check():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "mutation_check.py"
    spec = importlib.util.spec_from_file_location("mutation_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_narrows_a_set_to_the_paths_asked_for():
    only = _mutation_check()._only
    full = ("tests/ir", "tests/opencl/test_ops.py", "-k", "tests/ir")
    assert only(full, []) == full
    assert only(full, ["tests/ir/test_cost.py"]) == ("tests/ir/test_cost.py", "-k", "tests/ir")
    assert only(full, ["tests/opencl/"]) == ("tests/opencl/test_ops.py", "-k", "tests/ir")
    assert only(full, ["tests/numpy"]) == ("-k", "tests/ir")


def _flop_checkout(root):
    """A checkout whose one test pins a conv2d FLOP count worked out by hand."""
    (root / "tests" / "ir").mkdir(parents=True)
    (root / "tests" / "ir" / "test_flops_by_hand.py").write_text(
        "from cnnc.ir.cost import node_flops\n"
        "from cnnc.testing.nets import chain\n\n\n"
        "def test_conv():\n"
        "    g = chain((5, 5, 3), ('conv2d', 4, 3))\n"
        "    assert node_flops(g, g.nodes[-1]) == 3 * 3 * 4 * (27 * 2 + 1)\n")
    return ["conv2d-flops-half", "--baseline", "--root", str(root), "--only", "tests/ir",
            "--only", "tests/test_cli_options.py"]


def _row(out: str, name: str) -> list[str]:
    row = next(line for line in out.splitlines() if line.startswith(f"| {name} "))
    return [c.strip() for c in row.strip("|").split("|")]


def test_the_script_runs_the_baseline_once_and_counts_each_mutant(tmp_path, monkeypatch, capsys):
    """The table's counts come from the per-test results: the baseline's union run split back
    into each mutant's set, files the checkout lacks named, a mutant failing nothing or a test
    failing without one giving exit status 1."""
    import sys

    from mutants import Outcome

    check = _mutation_check()
    calls = []

    def fake_run(name, selection, root=None, python=None, workers=0):
        calls.append((name, selection, workers))
        results = {"tests/ir/test_cost.py::test_a": "passed",
                   "tests/ir/test_cost.py::test_b": "passed" if not name else "failed",
                   "tests/ir/test_cost.py::test_c": "skipped",
                   "tests/test_cli_options.py::test_d": "passed"}
        return Outcome(0, 0, 1.0, 0, "", results)

    monkeypatch.setattr(check, "run", fake_run)
    (tmp_path / "tests" / "ir").mkdir(parents=True)
    (tmp_path / "tests" / "test_cli_options.py").write_text("")
    monkeypatch.setattr("sys.argv", ["mutation_check.py", "conv2d-flops-half", "--baseline",
                                     "-n", "2", "--root", str(tmp_path), "--failures",
                                     str(tmp_path / "f.json"), "--only", "tests/ir",
                                     "--only", "tests/test_cli_options.py",
                                     "--only", "tests/viz/test_merges_pictures.py"])
    assert check.main() == 0
    cells = _row(capsys.readouterr().out, "conv2d-flops-half")
    assert cells[1] == ("tests/ir tests/test_cli_options.py "
                        "(absent: tests/viz/test_merges_pictures.py)")
    assert cells[2:4] == ["1/3", "1"] and cells[5] == "0/3", cells
    assert calls == [("", ("tests/ir", "tests/test_cli_options.py"), 2),
                     ("conv2d-flops-half", ("tests/ir", "tests/test_cli_options.py"), 2)]
    import json

    record = json.loads((tmp_path / "f.json").read_text())["mutants"]["conv2d-flops-half"]
    assert record["failing"] == ["tests/ir/test_cost.py::test_b"]
    assert record["by_file"] == {"tests/ir/test_cost.py": [1, 2, 1],
                                 "tests/test_cli_options.py": [0, 1, 0]}
    # --recheck: only the tests the mutant failed run again without it
    calls.clear()
    sys.argv[sys.argv.index("--baseline")] = "--recheck"
    assert check.main() == 0
    assert calls[-1] == ("", ("tests/ir/test_cost.py::test_b",), 2)
    assert "conv2d-flops-half: 0 of its 1 failing tests fail without a mutant too" in (
        capsys.readouterr().out)
    monkeypatch.setattr(check, "run", lambda name, *a, **k: Outcome(
        0, 0, 1.0, 0, "", {"tests/ir/test_cost.py::test_a": "passed"}))
    assert check.main() == 1  # the mutant failed nothing
    assert "no test failed under: conv2d-flops-half" in capsys.readouterr().out


@pytest.mark.slow(reason="two child pytests importing cnnc: seconds idle, a minute loaded")
def test_the_script_counts_an_other_checkouts_tests(tmp_path, monkeypatch, capsys):
    """--root end to end: a checkout's own test against the mutant and without it, one file of
    the set absent."""
    check = _mutation_check()
    monkeypatch.setattr("sys.argv", ["mutation_check.py", *_flop_checkout(tmp_path)])
    assert check.main() == 0
    cells = _row(capsys.readouterr().out, "conv2d-flops-half")
    assert cells[1] == "tests/ir (absent: tests/test_cli_options.py)"
    assert cells[2] == "1/1" and cells[5] == "0/1", cells
