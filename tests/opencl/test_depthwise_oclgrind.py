"""The direct depthwise kernels (kernels/depthwise.cl, and depthwise_grad.cl's input and kernel
gradients in the training steps) under Oclgrind (see test_oclgrind.py): every access checked,
data races detected, on the depthwise op cases (strides, dilation, multipliers 2 and 3, 'valid',
7 channels, a folded batch norm) and the separable ones, forward and training step, with a CPU's
and a GPU's tiling; and each forward algorithm of depthwise.cl (the row kernel, the default, and
the direct one over flat pixels) on the same cases (depthwise_algos_oclgrind_driver.py). Fails if
the cases stop launching the kernels."""

from __future__ import annotations

import re
from math import prod
from pathlib import Path

import pytest
from test_oclgrind import DRIVER, _run_driver, oclgrind_env, pytestmark, run_clean  # noqa: F401
from test_ops import CASES, forward_graph, train_graph

from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target

NAMES = [c.name for c in CASES if c.name.startswith("depthwise") or c.name == "batchnorm_folded"]
GRAD_NAMES = [c.name for c in CASES if c.name.startswith(("depthwise", "separable"))]


ALGOS_DRIVER = Path(__file__).with_name("depthwise_algos_oclgrind_driver.py")


def test_the_cases_launch_the_depthwise_row_kernel():
    for case in CASES:
        if case.name in NAMES:
            for target in (Target("cpu", 1), Target("gpu", 8)):
                plan = make_plan(forward_graph(case), 2, target)
                kernels = {(lau.file, lau.kernel) for _, lau in plan.launches()}
                assert ("depthwise.cl", "depthwise_rows") in kernels, case.name


def test_the_cases_launch_the_direct_depthwise_gradient_kernels():
    for case in CASES:
        if case.name in GRAD_NAMES:
            for target in (Target("cpu", 1), Target("gpu", 8)):
                plan = make_plan(train_graph(case), 2, target)
                kernels = {(lau.file, lau.kernel) for _, lau in plan.launches()}
                assert ("depthwise_grad.cl", "depthwise_grad_kernel") in kernels, case.name
                assert ("depthwise_grad.cl", "depthwise_grad_input") in kernels, case.name


@pytest.mark.slow(reason="test_every_kernel_is_clean_under_oclgrind runs these cases in the "
                  "default suite; this runs them alone, to name a depthwise failure")
def test_depthwise_kernel_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    names = list(dict.fromkeys([*NAMES, *GRAD_NAMES]))
    out = run_clean(DRIVER, oclgrind_env, *names)
    # Each case: forward and training step, with a CPU's and a GPU's tiling.
    assert out.count(": ok") == 4 * len(names), out


def test_depthwise_forward_algorithms_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    """The row kernel with its default groups and with one row block a group, and the direct
    kernel, each on every forward depthwise case (a CPU's float8 blocks; batch 3, so the row
    kernel's grid is rounded up past the last row block)."""
    out = run_clean(ALGOS_DRIVER, oclgrind_env)
    assert "MISMATCH" not in out and out.count(": ok") >= 3 * 7, out
    for label in ("rows", "rows-one-block-groups", "direct"):
        assert f" {label} (" in out, out


def test_depthwise_gradients_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """The device's own tiling (Oclgrind: a GPU's) under a small GPU's limits: 64 work-items
    per group, 4 KiB of local memory, one compute unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    names = ["depthwise_stride2_multiplier2", "depthwise_dilated_multiplier3_softmax",
             "separable"]
    run = _run_driver(env, "--native", *names)
    lines = run.stdout.splitlines()
    assert len(lines) == 2 * len(names) and all(": ok" in line for line in lines), run.stdout
    found = re.findall(r"\((\d+(?:, \d+)*),?\)", run.stdout)
    groups = [tuple(map(int, g.split(", "))) for g in found]
    assert all(prod(g) <= 64 for g in groups), run.stdout
