"""winograd_fused's work-groups (winograd.fused_group): 8 work-items, fewer on a CPU where
groups of 8 would leave a compute unit without one (a batch-1 14x14 map: 7 work-items), so
that pocl runs the launch on every core; the rounded-up grid's last work-items, past the
tiles, store nothing. Checked against the NumPy reference as bound for a 2-core AVX-512 CPU."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy.backend import NumpyBackend
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.winograd import fused_group
from cnnc.crosscheck import OUTPUT_TOLERANCE, cross_check, random_feeds
from cnnc.initializers import initial_values
from cnnc.passes.pipeline import inference_graph

AVX512 = Target("cpu", 2, native_vector=16)


def _conv(graph) -> str:
    """The convolution's node (the activation fused into it takes the activation's name)."""
    (name,) = [n.name for n in graph.nodes if n.op == "conv2d"]
    return name


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
    variants = {_conv(graph): {"algo": "winograd", "wino_m": 2, "wino_fused": tiles}}
    plan = make_plan(graph, 1, AVX512, variants=variants)
    (fused,) = [lau for _, lau in plan.launches() if lau.kernel == "winograd_fused"]
    groups = fused.global_size[0] // fused.local_size[0]
    assert fused.define_map["NT"] == tiles
    assert fused.local_size[0] < 8 and groups == 2, (fused.global_size, fused.local_size)
    report = cross_check(graph, 1, device=device.index, seed=4, target=AVX512,
                         variants=variants)
    bad = [c for c in report.checks if c.local_rel > c.tolerance * 4
           or c.judged_e2e and c.e2e_rel > OUTPUT_TOLERANCE]
    assert not bad, [(c.node, c.local_rel, c.tolerance) for c in bad]


@pytest.mark.parametrize("side, tiles, items, nt", [
    (14, 8, 7, 8),  # 49 tiles: 7 work-items of 8
    (14, 4, 13, 4),
    (4, 4, 2, 2),  # 4 tiles: 2 work-items of 2, not 1 of 4 (a worker each)
    (2, 4, 1, 1),  # 1 tile: 1 work-item
])
def test_in_a_chain_a_work_item_is_a_group_and_each_worker_gets_one(side, tiles, items, nt,
                                                                       device):
    """A plan made for chains (serial) gives winograd_fused one work-item a group, so that the
    chain's claims split the work-items evenly, and at most tiles // workers tiles a
    work-item, so that no worker of a 2-core CPU waits while the other takes every tile."""
    if device.kind == "gpu":
        pytest.skip("a CPU's chains")
    spec = {"network": "groups", "input": [side, side, 16], "layers": [
        {"conv2d": [16, 3], "padding": "same", "name": "c"}, {"activation": "relu"}]}
    graph = inference_graph(cnnc.load_spec(spec))
    variants = {_conv(graph): {"algo": "winograd", "wino_m": 2, "wino_fused": tiles}}
    plan = make_plan(graph, 1, AVX512, variants=variants, serial=True)
    (fused,) = [lau for _, lau in plan.launches() if lau.kernel == "winograd_fused"]
    assert fused.local_size == (1,) and fused.global_size == (items,)
    assert fused.define_map["NT"] == nt
    alone = make_plan(graph, 1, AVX512, variants=variants)  # unchained: the variant's tiles
    (fused,) = [lau for _, lau in alone.launches() if lau.kernel == "winograd_fused"]
    assert fused.define_map["NT"] == tiles


@pytest.mark.parametrize("side, tiles", [(14, 8), (4, 4)])
def test_a_chain_of_single_work_item_groups_matches_numpy(side, tiles, chains_on):
    """The pass as a chain on the device (the plan made for chains, as above) against NumPy."""
    spec = {"network": "groups", "input": [side, side, 16], "layers": [
        {"conv2d": [16, 3], "padding": "same"}, {"activation": "relu"},
        {"conv2d": [8, 3], "padding": "same", "name": "out"}]}
    graph = inference_graph(cnnc.load_spec(spec))
    convs = [n.name for n in graph.nodes if n.op == "conv2d"]
    variants = {name: {"algo": "winograd", "wino_m": 2, "wino_fused": tiles} for name in convs}
    state = initial_values(graph.state, 3)
    feeds = random_feeds(graph, 1, 3)
    ocl = OpenCLBackend(chains_on)
    ocl.choose_variants = lambda g, b: variants
    ocl.init_state(graph.state, state)
    exe = ocl.compile(graph, 1)
    assert exe._chains and exe.plan.serial
    kernels = [lau.kernel for _, lau in exe.plan.launches()]
    assert kernels.count("winograd_fused") == 2, kernels
    ref = NumpyBackend()
    ref.init_state(graph.state, state)
    want = ref.compile(graph, 1).run(feeds, graph.outputs)
    got = exe.run(feeds, graph.outputs)
    for name in graph.outputs:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-4)
