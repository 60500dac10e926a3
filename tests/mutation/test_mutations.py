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


def test_an_unknown_or_stale_mutant_stops_the_run():
    outcome = run("no-such-mutant", ("tests/ir/test_flops_by_hand.py",), timeout=120)
    assert outcome.status == 4 and "not a mutant" in outcome.output, _explain(outcome)


@pytest.mark.slow(reason="each mutant over its test files: minutes (OpenCL ones rebuild kernels)")
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_mutant_fails_its_broader_set(name):
    _needs_device(name)
    outcome = run(name, MUTANTS[name].full)
    assert outcome.failed >= 1, _explain(outcome)
