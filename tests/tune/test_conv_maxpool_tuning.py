"""The tuner on convolutions fused with their max pooling (cnnc/ir/conv_maxpool.py): tuned and
keyed as the convolution they run, its pooling after it (cnnc/tune/space.py: tuning_graph), so
the cache's entry for the convolution of the unfused graph sets the fused node's variant, and
bind_conv_maxpool.py pools as that variant stores."""

from __future__ import annotations

import cnnc
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.passes.pipeline import inference_graph, inference_pipeline, run_pipeline
from cnnc.tune import cache as tc
from cnnc.tune.space import tunable, tuning_graph
from cnnc.tune.tuner import install, node_key

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
    # the unfused graph's entry: the same key as the fused node's stand-in
    key = node_key(backend, unfused, unfused.node("a"), 3)
    assert key == node_key(backend, tuning_graph(graph), tuning_graph(graph).node("p"), 3)
    cache.put(tc.make_entry(key, chosen, 0.001, 0.002))
    install(backend)
    assert backend.choose_variants(graph, 3)["p"] == chosen
    stores = [lau for n, lau in backend.plan(graph, 3).launches()
              if n == "p" and lau.kernel == "winograd_output"]
    assert len(stores) == 1 and stores[0].define_map["POOL"] == 1
    assert stores[0].define_map["WINO_M"] == 2
