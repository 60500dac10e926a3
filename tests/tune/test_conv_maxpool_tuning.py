"""The tuner on convolutions fused with their max pooling (cnnc/ir/conv_maxpool.py): tuned and
keyed as the convolution they run, its pooling after it (cnnc/tune/space.py: tuning_graph), the
key marked with the pooling (tuner.POOLED_BY: each variant is timed with the pooling's launch
where it cannot pool as it stores, so the entry is not the unpooled convolution's); the cache's
entry sets the fused node's variant, and bind_conv_maxpool.py pools as that variant stores."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.passes.pipeline import inference_graph, inference_pipeline, run_pipeline
from cnnc.tune import cache as tc
from cnnc.tune.space import tunable, tuning_graph, variant_space
from cnnc.tune.tuner import POOLED_BY, READERS_SPACE, Tuner, install, node_key

SPEC = {
    "network": "pooled", "input": [9, 9, 8],
    "layers": [
        {"conv2d": [16, 3], "padding": "same", "use_bias": False},
        {"batchnorm": None},
        {"activation": "relu", "name": "a"},
        {"maxpool2d": 2, "name": "p"},
        {"conv2d": [8, 3], "padding": "same", "name": "c"},
        {"maxpool2d": 2, "padding": "same", "name": "q"},
        {"flatten": None},
    ],
}


def _unfused(graph):
    return run_pipeline(graph, [p for p in inference_pipeline() if p.name != "fuse_conv_maxpool"])


def test_a_fused_node_is_tuned_as_its_convolution():
    spec = cnnc.load_spec(SPEC)
    graph, unfused = inference_graph(spec), _unfused(spec)
    assert graph.node("p").op == "conv2d_maxpool" and not tunable(graph.node("p"))
    proxy = tuning_graph(graph)
    assert [(n.name, n.op) for n in proxy.nodes if n.op != "input"] == [
        ("p", "conv2d_bn"), ("p/pool", "maxpool2d"), ("q", "conv2d"), ("q/pool", "maxpool2d"),
        ("flatten", "flatten")]
    assert proxy.node("q").inputs == ("p/pool",) and proxy.node("flatten").inputs == ("q/pool",)
    assert proxy.outputs == ("flatten",) and tunable(proxy.node("p"))
    for fused, layer in (("p", "a"), ("q", "c")):
        assert proxy.node(fused).attrs == unfused.node(layer).attrs
        assert proxy.shape_of(fused) == unfused.shape_of(layer)
    assert tuning_graph(proxy) is proxy


def test_the_convolutions_cached_variant_sets_the_fused_launch(device, cache_dir):
    spec = cnnc.load_spec(SPEC)
    graph, unfused = inference_graph(spec), _unfused(spec)
    backend = OpenCLBackend(device)
    chosen = {"algo": "winograd", "wino_m": 2}
    cache = tc.TuningCache.default()
    # the fused node's stand-in: the unfused graph's convolution's key, marked with the pooling
    key = node_key(backend, tuning_graph(graph), tuning_graph(graph).node("p"), 3)
    assert key["attrs"].pop(POOLED_BY) == "maxpool2d"
    assert key == node_key(backend, unfused, unfused.node("a"), 3)
    key["attrs"][POOLED_BY] = "maxpool2d"
    cache.put(tc.make_entry(key, chosen, 0.001, 0.002))
    install(backend)
    assert backend.choose_variants(graph, 3)["p"] == chosen
    stores = [lau for n, lau in backend.plan(graph, 3).launches()
              if n == "p" and lau.kernel == "winograd_output"]
    assert len(stores) == 1 and stores[0].define_map["POOL"] == 1
    assert stores[0].define_map["WINO_M"] == 2


# Two 3x3 convolutions of the same shapes on a 14x14 map, the second read by a 2x2 pooling in
# its store: F(7x7) takes four tiles there, which would cut pooling windows, so the pooled one
# is not offered it (winograd.worth_offering).
SAME_SHAPES = {
    "network": "same_shapes", "input": [14, 14, 8],
    "layers": [
        {"conv2d": [8, 3], "padding": "same", "name": "bare"},
        {"conv2d": [8, 3], "padding": "same", "name": "c"},
        {"maxpool2d": 2, "name": "pooled"},
        {"flatten": None},
    ],
}


def test_a_pooled_convolution_is_keyed_apart_from_the_same_one_unpooled(device, cache_dir):
    """Their spaces differ, so they share no entry: each gets the variant tuned for it (with one
    key, the unpooled one's F(7x7) was no variant of the pooled one, which then ran the
    default and a pooling launch of its own)."""
    graph = inference_graph(cnnc.load_spec(SAME_SHAPES))
    proxy = tuning_graph(graph)
    backend = OpenCLBackend(device)
    bare, pooled = (node_key(backend, proxy, proxy.node(n), 1) for n in ("bare", "pooled"))
    changed = pooled["attrs"].pop(READERS_SPACE)
    assert pooled["attrs"].pop(POOLED_BY) == "maxpool2d"
    assert bare == pooled  # the same launch otherwise
    # F(7x7) taken out; the row kernel, pooling as it stores, added (8 channels) as the
    # default, the direct algorithm keeping its own default block
    assert {v["wino_m"] for v in changed["taken"] if v["algo"] == "winograd"} == {7}
    assert {v["algo"] for v in changed["taken"]} == {"winograd", "direct"}
    assert {v["algo"] for v in changed["added"]} == {"conv_rows"}
    pooled["attrs"][READERS_SPACE] = changed
    pooled["attrs"][POOLED_BY] = "maxpool2d"
    cache = tc.TuningCache.default()
    f7, f4 = {"algo": "winograd", "wino_m": 7}, {"algo": "winograd", "wino_m": 4}
    cache.put(tc.make_entry(bare, f7, 0.001, 0.002))
    cache.put(tc.make_entry(pooled, f4, 0.001, 0.002))
    install(backend)
    assert backend.choose_variants(graph, 1) == {"bare": f7, "pooled": f4}


# The same convolution's map read by the pooling and by a concatenation (unet_mini's skips):
# the fusion leaves the pair apart, so the map is written whole and pool.cl pools it.
SKIP = {
    "network": "skip", "input": [14, 14, 8],
    "layers": [
        {"conv2d": [8, 3], "padding": "same", "name": "c"},
        {"maxpool2d": 2, "name": "p"},
        {"upsampling2d": None, "name": "u"},
        {"concatenate": None, "inputs": ["u", "c"]},
    ],
}


def test_a_map_also_read_elsewhere_keeps_the_space_of_the_convolution_alone(device):
    graph = tuning_graph(inference_graph(cnnc.load_spec(SKIP)))
    assert graph.node("p").op == "maxpool2d"  # not fused
    backend = OpenCLBackend(device)
    space = variant_space(graph.node("c"), BindContext(graph, 1, backend.target))
    assert any(v.get("wino_m") == 7 for v in space)  # a tile may cut windows: pool.cl pools
    # the row kernel would not pool in its store (the default here: fused Winograd, by rule
    # at batch 1 on an AVX-512 CPU, else the direct kernel)
    assert space[0]["algo"] in ("winograd", "direct")
    key = node_key(backend, graph, graph.node("c"), 1)
    assert READERS_SPACE not in key["attrs"] and POOLED_BY not in key["attrs"]


@pytest.mark.slow  # a whole tuning run (~30 s on 2 cores)
def test_each_variant_is_timed_with_the_pooling_as_the_fused_node_binds(device, cache_dir,
                                                                        monkeypatch):
    """The graph each variant of the pooled convolution is timed on is the fused node alone:
    the row kernel's one launch pooling as it stores, the implicit GEMM's two (its map, then
    pool.cl's pooling); the unpooled convolution's, its own launch."""
    import io

    graph = inference_graph(cnnc.load_spec(SAME_SHAPES))
    tuner = Tuner(device, tc.TuningCache.default(), 60.0, out=io.StringIO(), progress=False)
    timed: dict[str, list] = {"bare": [], "pooled": []}
    original = Tuner._time

    def spy(self, g, name, batch, values, variant, index, best=None):
        t = original(self, g, name, batch, values, variant, index, best)
        exe = self.backend.compile(g, batch)
        timed[name].append((variant.get("algo"), g.node(name).op,
                            [b.launch.kernel for b in exe.bound]))
        return t
    monkeypatch.setattr(Tuner, "_time", spy)
    tuner.tune_graph(graph, 1, force=True)
    assert timed["pooled"] and all(op == "conv2d_maxpool" for _, op, _ in timed["pooled"])
    for algo, _, kernels in timed["pooled"]:
        if algo == "conv_rows":
            assert kernels == ["conv2d_rows"]
        elif algo == "direct":
            assert kernels[-1] == "maxpool2d"
    assert timed["bare"] and all(op == "conv2d" for _, op, _ in timed["bare"])
