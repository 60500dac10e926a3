"""The direct depthwise kernel (kernels/depthwise.cl) under Oclgrind (see test_oclgrind.py):
every access checked, data races detected, on the depthwise op cases (strides, dilation,
multipliers 2 and 3, 'valid', 7 channels, a folded batch norm), forward and training step, with
a CPU's and a GPU's tiling. Fails if the cases stop launching the kernel."""

from __future__ import annotations

from test_oclgrind import DRIVER, oclgrind_env, pytestmark, run_clean  # noqa: F401
from test_ops import CASES, forward_graph

from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target

NAMES = [c.name for c in CASES if c.name.startswith("depthwise") or c.name == "batchnorm_folded"]


def test_the_cases_launch_the_direct_depthwise_kernel():
    for case in CASES:
        if case.name in NAMES:
            plan = make_plan(forward_graph(case), 2, Target("cpu", 1))
            kernels = {(lau.file, lau.kernel) for _, lau in plan.launches()}
            assert ("depthwise.cl", "depthwise_forward") in kernels, case.name


def test_depthwise_kernel_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env, *NAMES)
    # Each case: forward and training step, with a CPU's and a GPU's tiling.
    assert out.count(": ok") == 4 * len(NAMES), out
