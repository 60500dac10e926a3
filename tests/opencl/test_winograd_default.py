"""conv2d's default by rule (winograd.wins_by_rule): the one-launch F(2x2) kernel with 4 or more
tiles per work-item for a stride-1 3x3 convolution of one group on a map of 14x14 or more at a
batch of at most 16, on an AVX-512 CPU; elsewhere the direct kernel (an AVX2 CPU, a GPU, 7x7
maps, batch 17, strides, dilations, groups, channels too many for 4 tiles). The plan binds
it without a variant, the tuner's space lists it first with the direct kernel after it, and
it matches NumPy as bound without a variant: alone through the tuner's gate, in a network
(crosscheck.py's tolerance times Winograd's stated factor), and pooling as it stores where a
2x2 max pooling reads it (conv2d_maxpool)."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.winograd import RULE_MAX_BATCH, winograd_error_factor, wins_by_rule
from cnnc.crosscheck import OUTPUT_TOLERANCE, cross_check
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import as_layer, default_variant, variant_space

FUSED = ("winograd.cl", "winograd_fused")
AVX512 = Target("cpu", 2, native_vector=16)


def _graph(shape, filters, conv=None, pool=False):
    conv = dict(conv or {})
    kernel = conv.pop("kernel_size", 3)
    layers = [{"conv2d": [filters, kernel], "padding": "same", **conv, "name": "c"},
              {"activation": "relu"}]
    if pool:
        layers.append({"maxpool2d": None, "pool_size": 2, "name": "p"})
    spec = {"network": "wino_default", "input": list(shape), "layers": layers}
    return inference_graph(cnnc.load_spec(spec))


def _conv(graph):
    (node,) = [n for n in graph.nodes if as_layer(n).op == "conv2d"]
    return node


# (input H W C, filters, conv extra args, batch, the default on an AVX-512 CPU)
CASES = [
    ((14, 14, 32), 32, {}, 1, True),  # F(2x2) x8
    ((28, 28, 16), 16, {}, 8, True),
    ((14, 14, 64), 64, {}, 1, True),  # x4
    ((16, 20, 8), 24, {}, 3, True),
    ((7, 7, 32), 32, {}, 1, False),  # a 7x7 map: the direct kernel ran faster
    ((14, 13, 32), 32, {}, 1, False),
    ((14, 14, 32), 32, {}, 16, True),
    ((14, 14, 32), 32, {}, 17, False),  # past RULE_MAX_BATCH
    ((14, 14, 128), 128, {}, 1, False),  # 2 tiles per work-item only
    ((28, 28, 32), 32, {"strides": 2}, 1, False),
    ((14, 14, 32), 32, {"dilation_rate": 2}, 1, False),
    ((14, 14, 32), 32, {"groups": 2}, 1, False),
    ((14, 14, 32), 32, {"kernel_size": 5}, 1, False),
]


@pytest.mark.parametrize("shape,filters,conv,batch,default", CASES)
def test_the_default_by_rule(shape, filters, conv, batch, default):
    """On an AVX-512 CPU as CASES say; on an AVX2 CPU (not measured) and a GPU never. Where
    it is the default the plan binds the fused kernel without a variant, and the space lists
    it first with the direct kernel second."""
    graph = _graph(shape, filters, conv)
    node = _conv(graph)
    for target, expected in ((AVX512, default), (Target("cpu", 2, native_vector=8), False),
                             (Target("gpu", 8), False)):
        ctx = BindContext(graph, batch, target)
        assert wins_by_rule(as_layer(node), ctx) == expected, target
        launches = make_plan(graph, batch, target).bindings[node.name].launches
        assert any((lau.file, lau.kernel) == FUSED for lau in launches) == expected, target
        space = variant_space(node, ctx)
        assert space[0] == default_variant(node, ctx)
        assert (space[0]["algo"] == "winograd") == expected
        if expected:
            assert space[0]["wino_m"] == 2 and space[0]["wino_fused"] >= 4
            assert space[1]["algo"] == "direct"  # the kernel it displaced, timed next
            assert "split" not in space[0]  # the direct kernel's parts are not its keys
        assert any(v["algo"] == "direct" for v in space)


def test_the_batch_bound():
    graph = _graph((14, 14, 32), 32)
    node = as_layer(_conv(graph))
    assert wins_by_rule(node, BindContext(graph, RULE_MAX_BATCH, AVX512))
    assert not wins_by_rule(node, BindContext(graph, RULE_MAX_BATCH + 1, AVX512))


@pytest.mark.parametrize("index", [0, 2, 3])
def test_its_default_matches_numpy(index, backend):
    """As bound without a variant (the gate's `{}`) and spelled out, through the gate: its
    shape and the gate's odd edge shapes (where the rule may pick the direct kernel)."""
    shape, filters, conv, batch, _ = CASES[index]
    graph = _graph(shape, filters, conv)
    node = _conv(graph)
    ctx = BindContext(graph, batch, backend.target)
    gate = Gate(backend, graph, node, batch)
    for variant in ({}, default_variant(node, ctx)):
        verdict = gate.check(variant)
        assert verdict.admitted, f"{variant}: {verdict.reason}"


@pytest.mark.parametrize("pool", [False, True])
def test_a_network_without_variants(pool, device, backend):
    """The whole network bound without variants against NumPy; with a 2x2 max pooling after
    it (conv2d_maxpool), the fused kernel pools as it stores (no pool.cl launch)."""
    plain = _graph((14, 14, 32), 32)
    expected = wins_by_rule(as_layer(_conv(plain)), BindContext(plain, 1, backend.target))
    graph = _graph((14, 14, 32), 32, pool=pool)
    node = graph.node("p") if pool else _conv(graph)
    report = cross_check(graph, 1, device=device.index, seed=3)
    factor = winograd_error_factor(2)
    bad = [c for c in report.checks if c.local_rel > c.tolerance * factor
           or c.judged_e2e and c.e2e_rel > OUTPUT_TOLERANCE]
    assert not bad, [(c.node, c.local_rel, c.e2e_rel) for c in bad]
    kernels = {c.node: c.kernels for c in report.checks}[node.name]
    assert ("winograd.cl:winograd_fused" in kernels) == expected, kernels
    if pool:
        assert node.op == "conv2d_maxpool" and "pool.cl:maxpool2d" not in kernels, kernels
