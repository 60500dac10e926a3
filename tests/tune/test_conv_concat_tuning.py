"""The tuner on convolutions reading a concatenation in place (cnnc/ir/conv_concat.py): tuned
and keyed as the convolution they run, the upsampling and concatenation before it
(cnnc/tune/space.py: tuning_graph), so the cache's entry for the convolution of the unfused
graph sets the fused node's variant, and bind_conv_concat.py reads the parts as that variant
loads its input."""

from __future__ import annotations

import cnnc
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.passes.pipeline import inference_graph, inference_pipeline, run_pipeline
from cnnc.tune import cache as tc
from cnnc.tune.space import tunable, tuning_graph
from cnnc.tune.tuner import install, node_key

SPEC = {
    "network": "skips", "input": [8, 8, 4],
    "layers": [
        {"conv2d": [8, 3], "padding": "same", "name": "skip"},
        {"maxpool2d": 2},
        {"conv2d": [16, 3], "padding": "same", "use_bias": False},
        {"batchnorm": None},
        {"upsampling2d": 2, "name": "up"},
        {"concatenate": None, "inputs": ["up", "skip"], "name": "cat"},
        {"conv2d": [8, 3], "padding": "same", "activation": "relu", "name": "c"},
        {"conv2d": [8, 3], "padding": "same", "name": "d"},
    ],
}


def _unfused(graph):
    return run_pipeline(graph, [p for p in inference_pipeline() if p.name != "fuse_conv_concat"])


def test_a_fused_node_is_tuned_as_its_convolution():
    spec = cnnc.load_spec(SPEC)
    graph, unfused = inference_graph(spec), _unfused(spec)
    assert graph.node("c").op == "conv2d_concat" and not tunable(graph.node("c"))
    proxy = tuning_graph(graph)
    assert [(n.name, n.op) for n in proxy.nodes if n.name.startswith("c")] == [
        ("c/up0", "upsampling2d"), ("c/cat", "concatenate"), ("c", "conv2d")]
    assert proxy.node("c/cat").inputs == ("c/up0", "skip") and proxy.node("d").inputs == ("c",)
    assert tunable(proxy.node("c"))
    assert proxy.node("c").attrs == unfused.node("c").attrs
    assert proxy.shape_of("c/cat") == unfused.shape_of("cat")
    assert tuning_graph(proxy) is proxy


def test_the_convolutions_cached_variant_sets_the_fused_launch(device, cache_dir):
    spec = cnnc.load_spec(SPEC)
    graph, unfused = inference_graph(spec), _unfused(spec)
    backend = OpenCLBackend(device)
    chosen = {"algo": "winograd", "wino_m": 2}
    cache = tc.TuningCache.default()
    # the unfused graph's entry: the same key as the fused node's stand-in
    key = node_key(backend, unfused, unfused.node("c"), 3)
    assert key == node_key(backend, tuning_graph(graph), tuning_graph(graph).node("c"), 3)
    cache.put(tc.make_entry(key, chosen, 0.001, 0.002))
    install(backend)
    assert backend.choose_variants(graph, 3)["c"] == chosen
    reads = [lau for n, lau in backend.plan(graph, 3).launches()
             if n == "c" and lau.kernel == "winograd_input"]
    assert reads and all(lau.define_map["CONCAT"] == 1 and lau.define_map["C0"] == 16
                         and lau.define_map["UP0H"] == 2 for lau in reads)
    assert {lau.kernel for n, lau in backend.plan(graph, 3).launches() if n == "c"}.isdisjoint(
        {"concat_rows", "upsampling2d"})
