"""The variant space and the defaults (cnnc/tune/space.py, tiling.py): defaults from the
device's properties only, every variant within the device's limits, no device needed."""

from __future__ import annotations

import itertools
import math

import pytest
from nodes import tiny_inference_graph, tiny_training_graph, tunable_nodes

from cnnc.backends.opencl.algorithms import ALGORITHMS
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Limits, Target
from cnnc.backends.opencl.tiling import register_tile, registers_used
from cnnc.tune.cache import variant_problem
from cnnc.tune.space import _tiles, as_layer, default_variant, describe, variant_space

AVX2 = Target("cpu", 2, native_vector=8)
AVX512 = Target("cpu", 2, native_vector=16)
SMALL_GPU = Target("gpu", 4, Limits(max_group=128, max_item_sizes=(128, 128, 64),
                                    local_memory=16 * 1024), force_local_tiles=True)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    return tiny_training_graph(tmp_path_factory.mktemp("spec"))


def test_defaults_follow_the_vector_registers():
    # AVX2: 16 registers, float8 -> 4 rows of two float8 vectors (8 x 16 x 2 spills)
    assert register_tile(128, AVX2) == {"MR": 4, "VW": 8, "NV": 2}
    # AVX-512 (and an unknown width, as before): 32 registers, float16
    assert register_tile(128, AVX512) == {"MR": 8, "VW": 16, "NV": 2}
    assert register_tile(128, Target("cpu", 2)) == {"MR": 8, "VW": 16, "NV": 2}
    assert register_tile(128, Target("gpu", 8)) == {"MR": 4, "VW": 4, "NV": 1}
    for target in (AVX2, AVX512):
        for cols in (1, 3, 10, 12, 64, 256):
            tile = register_tile(cols, target)
            assert cols % (tile["VW"] * tile["NV"]) == 0
            assert registers_used(tile, target) <= target.vector_registers


@pytest.mark.parametrize("target", [AVX2, AVX512, SMALL_GPU], ids=["avx2", "avx512", "gpu"])
def test_every_variant_is_valid_and_within_the_limits(graph, target, tmp_path):
    fused = tiny_inference_graph(tmp_path)  # the ops fused at inference alone
    for each, node in [(g, n) for g in (graph, fused) for n in tunable_nodes(g)]:
        ctx = BindContext(each, 3, target)
        space = variant_space(node, ctx)
        assert space[0] == default_variant(node, ctx)
        # 22: a 3x3 one on few pixels lists Winograd's, the tiles and forward parts' two
        assert 2 <= len(space) <= 22, [describe(v) for v in space]
        assert len({describe(v) for v in space}) == len(space)
        for variant in space:
            assert variant_problem(variant) is None
            if target.kind == "cpu" and "MR" in variant:
                algorithm = ALGORITHMS[(as_layer(node).op, variant["algo"])]
                assert algorithm.registers(variant, target) <= target.vector_registers
            plan = make_plan(each, 3, target, variants={node.name: variant})
            for name, lau in plan.launches():
                if name == node.name and lau.local_size is not None:
                    assert math.prod(lau.local_size) <= target.limits.max_group
                    assert all(s <= m for s, m in zip(lau.local_size,
                                                      target.limits.max_item_sizes))


def test_among_equally_full_tiles_the_wider_vectors_come_first():
    # 4x16x1 and 4x4x2 hold as many registers as AVX2's default 4x8x2: a search that PATIENCE
    # ends two variants after the default reaches the full-register vectors (measured faster on
    # small-reduction 1x1 convolutions) before the half-register ones
    tiles = [(t["MR"], t["VW"], t["NV"]) for t in _tiles(96, AVX2)]
    assert tiles.index((4, 16, 1)) < tiles.index((4, 4, 2))
    for a, b in itertools.pairwise(tiles):
        ra, rb = (registers_used(dict(zip(("MR", "VW", "NV"), t)), AVX2) for t in (a, b))
        assert ra > rb or (ra == rb and a[1] >= b[1]), (a, b)


def test_the_binders_take_the_variant(graph):
    node = tunable_nodes(graph, ("conv2d_grad_kernel",))[0]
    variant = {"algo": "direct", "MR": 2, "VW": 4, "NV": 2, "split": 2, "row_groups": 0}
    plan = make_plan(graph, 3, AVX2, variants={node.name: variant})
    (main,) = [lau for n, lau in plan.launches() if n == node.name
               and lau.kernel in ("conv2d_grad_kernel", "matmul_tn")]
    d = main.define_map
    assert (d["MR"], d["VW"], d["NV"]) == (2, 4, 2)
    assert main.global_size[2] == 2 and main.local_size is None


def test_more_reduction_parts_are_timed_before_the_tiles(graph):
    """A kernel gradient's space offers twice and four times the default's parts right after
    its algorithms' own variants: a search cut short after two more variants still tries them."""
    checked = 0
    for node in tunable_nodes(graph, ("conv2d_grad_kernel",)):
        space = variant_space(node, BindContext(graph, 64, AVX2))
        base = space[0]
        if base.get("algo") != "direct":
            continue
        direct = [v for v in space if v.get("algo") == "direct"]
        assert [v["split"] for v in direct[1:3]] == [2 * base["split"], 4 * base["split"]]
        assert all({**v, "split": base["split"]} == base for v in direct[1:3]), node.name
        checked += 1
    assert checked


def test_winograd_fused_kernels_with_full_blocks_are_timed_first():
    """winograd.winograd_space: the one-launch kernel's variants holding FUSED_FIRST_TILES tiles
    per work-item or more first (few channels: resnet_mini's 16-channel layers), then the rest
    by m, largest first (fashion's 128- and 256-channel layers keep that order alone)."""
    from pathlib import Path

    from cnnc.backends.opencl.winograd import FUSED_FIRST_TILES, NAME
    from cnnc.frontend.spec import load_spec
    from cnnc.passes.pipeline import inference_graph

    specs = Path(__file__).parents[2] / "specs"
    heads = {}
    for spec in ("resnet_mini.yaml", "fashion.yaml"):
        graph = inference_graph(load_spec(str(specs / spec)))
        ctx = BindContext(graph, 256, AVX512)
        for node in tunable_nodes(graph, ("conv2d", "conv2d_bn", "conv2d_bn_add")):
            wino = [v for v in variant_space(node, ctx) if v.get("algo") == NAME]
            if not wino:
                continue
            full = [v.get("wino_fused", 0) >= FUSED_FIRST_TILES for v in wino]
            assert full == sorted(full, reverse=True), [describe(v) for v in wino]
            rest = [v["wino_m"] for v, f in zip(wino, full) if not f]
            assert rest == sorted(rest, reverse=True), [describe(v) for v in wino]
            heads[(spec, node.name)] = full[0]
    assert heads[("resnet_mini.yaml", "activation")]  # 28x28, 16 channels into 16
    assert not all(heads.values())  # fashion's wide layers start with the largest m
