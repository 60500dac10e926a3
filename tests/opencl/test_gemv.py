"""The dense layer's few-rows algorithm (kernels/gemv.cl, bind_gemv.py): the default on one row
and only there, the tuner's to pick up to GEMV_ROWS rows (checked here on the device by the
tuner's gate against NumPy, several rows in a block and in several blocks), its work-groups
within the device's limits, and its launches clean under Oclgrind with a CPU's and a GPU's
tiling and with a small GPU's limits. Its results against NumPy at batch 1 (forward and
training step) are op_cases' dense_gemv_* cases in test_ops.py."""

from __future__ import annotations

import re
from math import prod

import pytest
from test_oclgrind import DRIVER, _run_driver, oclgrind_env, pytestmark, run_clean  # noqa: F401
from test_ops import CASES, forward_graph

from cnnc.backends.opencl.bind_gemv import (
    DEFAULT_ROWS,
    GEMV_ROWS,
    HEAD,
    HEAD_MAX_MACS,
    group_size,
)
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Limits, Target
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import variant_space

NAMES = [c.name for c in CASES if c.name.startswith("dense_gemv")]


def _kernels(case_name: str, batch: int, target: Target) -> list[tuple[str, str]]:
    case = next(c for c in CASES if c.name == case_name)
    plan = make_plan(forward_graph(case), batch, target)
    return [(lau.file, lau.kernel) for _, lau in plan.launches()]


def test_one_row_runs_gemv_and_more_rows_the_gemm():
    assert len(NAMES) == 2 and DEFAULT_ROWS == 1
    for name in NAMES:
        for target in (Target("cpu", 1), Target("gpu", 8)):
            few = _kernels(name, DEFAULT_ROWS, target)
            assert ("gemv.cl", "gemv") in few and ("gemm.cl", "matmul") not in few, name
            more = _kernels(name, DEFAULT_ROWS + 1, target)
            assert ("gemv.cl", "gemv") not in more and ("gemm.cl", "matmul") in more, name


SPEC = """
network: gemv_rows
input: [105]
layers:
  - {dense: 20, activation: tanh}
"""


def test_the_gate_admits_gemv_on_several_rows(backend):
    """On the device against NumPy (the gate's cases: this batch and its edge shapes, odd
    batches and an odd reduction): every row in one block, and blocks of 2 (the last part
    full of rows past the end)."""
    batch = 5
    assert batch <= GEMV_ROWS
    graph = inference_graph(load_spec(SPEC))
    node = next(n for n in graph.nodes if n.op == "dense")
    from cnnc.backends.opencl.launches import BindContext

    space = variant_space(node, BindContext(graph, batch, backend.target))
    assert any(v["algo"] == "gemv" for v in space) and space[0]["algo"] == "direct"
    gate = Gate(backend, graph, node, batch)
    for mr in (batch, 2):
        verdict = gate.check({"algo": "gemv", "MR": mr, "VW": 4, "NV": 1})
        assert verdict.admitted, verdict.reason


HEAD_SPEC = """
network: head
input: [{inputs}]
layers:
  - {{dense: 12, activation: softmax}}
"""


def _head_kernels(inputs: int, batch: int, target: Target) -> list[tuple[str, str]]:
    graph = inference_graph(load_spec(HEAD_SPEC.format(inputs=inputs)))
    return [(lau.file, lau.kernel) for _, lau in make_plan(graph, batch, target).launches()]


def test_a_softmax_head_is_one_launch_on_few_rows():
    for target in (Target("cpu", 2), Target("gpu", 8)):
        for batch in (1, 3, GEMV_ROWS):
            assert _head_kernels(37, batch, target) == [("gemv.cl", HEAD)], (target, batch)
        more = _head_kernels(37, GEMV_ROWS + 1, target)
        assert ("softmax.cl", "softmax") in more and ("gemv.cl", HEAD) not in more
        # a head with more multiply-adds than one work-group per row should take
        large = _head_kernels(HEAD_MAX_MACS // 12 + 1, 1, target)
        assert ("softmax.cl", "softmax") in large and ("gemv.cl", HEAD) not in large


def test_the_gate_admits_dense_softmax_on_several_rows(backend):
    """On the device against NumPy: every row in one block and blocks of 2 (the last one's
    second row past the end), and each way of cutting the 12 columns among work-items."""
    batch = 5
    graph = inference_graph(load_spec(HEAD_SPEC.format(inputs=37)))
    node = next(n for n in graph.nodes if n.op == "dense")
    from cnnc.backends.opencl.launches import BindContext

    space = variant_space(node, BindContext(graph, batch, backend.target))
    assert space[0]["algo"] == HEAD and any(v["algo"] == "direct" for v in space)
    gate = Gate(backend, graph, node, batch)
    for mr, vw, nv in ((batch, 4, 1), (2, 2, 2), (2, 1, 4), (1, 4, 3)):
        verdict = gate.check({"algo": HEAD, "MR": mr, "VW": vw, "NV": nv})
        assert verdict.admitted, (mr, vw, nv, verdict.reason)


def test_group_size_within_the_device_limits():
    cpu = Target("cpu", 2)
    assert group_size(4096, 32, cpu) == 64  # MAX_GROUP
    assert group_size(300, 48, cpu) == 8  # parts of at least MIN_PART rows
    assert group_size(20, 48, cpu) == 1
    small = Target("gpu", 1, limits=Limits(max_group=16, max_item_sizes=(16, 16, 16),
                                           local_memory=2048))
    # 16 work-items allowed, but 8 partial blocks of 64 floats fill the 2 KiB
    assert group_size(4096, 64, small) == 8
    assert group_size(4096, 4, small) == 16


OCLGRIND_SLOW = pytest.mark.slow(reason="Oclgrind simulates each work-item and builds its own "
                                          "programs: 10-20 s idle, a minute under load")


@OCLGRIND_SLOW
def test_gemv_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env, *NAMES)
    assert out.count(": ok") == 4 * len(NAMES), out


@OCLGRIND_SLOW
def test_gemv_within_gpu_like_limits(oclgrind_env):  # noqa: F811
    """The device's own tiling under a small GPU's limits: 64 work-items per group, 4 KiB of
    local memory, one compute unit."""
    env = {**oclgrind_env, "OCLGRIND_MAX_WGSIZE": "64", "OCLGRIND_LOCAL_MEM_SIZE": "4096",
           "OCLGRIND_COMPUTE_UNITS": "1"}
    run = _run_driver(env, "--native", *NAMES)
    lines = run.stdout.splitlines()
    assert len(lines) == 2 * len(NAMES) and all(": ok" in line for line in lines), run.stdout
    found = re.findall(r"\((\d+(?:, \d+)*),?\)", run.stdout)
    groups = [tuple(map(int, g.split(", "))) for g in found]
    assert groups and all(prod(g) <= 64 for g in groups), run.stdout
