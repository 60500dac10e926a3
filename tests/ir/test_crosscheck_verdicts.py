"""The cross-check's verdicts on a node's errors, without a device: what tests and the Oclgrind
drivers rely on when they ask a report which kernels ran and that they matched NumPy."""
import math

import pytest

from cnnc.crosscheck import OUTPUT_TOLERANCE, CrossCheck, NodeCheck


def _check(local_rel, e2e_rel=0.0, judged=False):
    return NodeCheck("n", "conv2d", "conv2d.cl:conv2d_forward", 1e-5, local_rel=local_rel,
                     e2e_rel=e2e_rel, judged_e2e=judged)


def test_a_node_within_its_tolerance_passes_and_an_unchecked_one_too():
    assert _check(0.9e-5).passes()
    assert _check(math.nan).passes()  # the node was not run alone (an operand updated before)
    assert not _check(1.1e-5).passes()


def test_the_factor_widens_only_the_nodes_own_tolerance():
    assert _check(3e-5).passes(factor=4.0)
    assert not _check(5e-5).passes(factor=4.0)
    assert not _check(0.0, e2e_rel=2 * OUTPUT_TOLERANCE, judged=True).passes(factor=100.0)
    assert _check(0.0, e2e_rel=2 * OUTPUT_TOLERANCE, judged=False).passes()


def test_passed_kernels_names_every_failure():
    good = _check(0.0)
    bad = NodeCheck("m", "dense", "gemm.cl:matmul", 1e-5, local_rel=2e-3)
    report = CrossCheck(graph=None, batch=1, device="cpu", checks=[good, bad])
    with pytest.raises(AssertionError, match=r"m \(dense, gemm.cl:matmul\): alone 2.00e-03"):
        report.passed_kernels()
    report.checks = [good]
    assert report.passed_kernels() == {"n": "conv2d.cl:conv2d_forward"}
