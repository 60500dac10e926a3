"""winograd_fused's work-groups (winograd.fused_group): 8 work-items, fewer on a CPU where
groups of 8 would leave a compute unit without one (a batch-1 14x14 map: 7 work-items), so
that pocl runs the launch on every core; the rounded-up grid's last work-items, past the
tiles, store nothing. Checked against the NumPy reference as bound for a 2-core AVX-512 CPU."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.winograd import fused_group
from cnnc.crosscheck import OUTPUT_TOLERANCE, cross_check
from cnnc.passes.pipeline import inference_graph

AVX512 = Target("cpu", 2, native_vector=16)


def test_groups_spread_a_small_launch_over_the_compute_units():
    assert fused_group(7, AVX512) == 4  # two groups (4 + 3) instead of one of 8
    assert fused_group(14, AVX512) == 7
    assert fused_group(32, AVX512) == 8  # enough groups of 8 already
    assert fused_group(1, AVX512) == 1
    assert fused_group(7, Target("cpu", 1, native_vector=16)) == 7
    assert fused_group(7, Target("gpu", 8)) == 8  # a GPU keeps its groups of 8


@pytest.mark.parametrize("shape, tiles", [((14, 14, 16), 8), ((14, 14, 16), 4), ((16, 16, 8), 8)])
def test_small_groups_match_numpy(shape, tiles, device):
    if device.kind == "gpu":
        pytest.skip("a CPU's work-groups")
    spec = {"network": "groups", "input": list(shape), "layers": [
        {"conv2d": [16, 3], "padding": "same", "name": "c"}, {"activation": "relu"}]}
    graph = inference_graph(cnnc.load_spec(spec))
    variants = {"c": {"algo": "winograd", "wino_m": 2, "wino_fused": tiles}}
    plan = make_plan(graph, 1, AVX512, variants=variants)
    (fused,) = [lau for _, lau in plan.launches() if lau.kernel == "winograd_fused"]
    groups = fused.global_size[0] // fused.local_size[0]
    assert fused.local_size[0] < 8 and groups == 2, (fused.global_size, fused.local_size)
    report = cross_check(graph, 1, device=device.index, seed=4, target=AVX512,
                         variants=variants)
    bad = [c for c in report.checks if c.local_rel > c.tolerance * 4
           or c.judged_e2e and c.e2e_rel > OUTPUT_TOLERANCE]
    assert not bad, [(c.node, c.local_rel, c.tolerance) for c in bad]
