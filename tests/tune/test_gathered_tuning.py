"""The tuner on gathered convolutions (cnnc/ir/gathered.py): tuned and keyed as the 1x1 layer
they run on an input of the gathered shape (cnnc/tune/space.py: tuning_graph), so the cache's
entry for that layer sets their register block (bind_gathered.py keeps their direct GEMM)."""

from __future__ import annotations

import cnnc
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.passes.pipeline import inference_graph
from cnnc.tune import cache as tc
from cnnc.tune.space import tunable, tuning_graph, variant_space
from cnnc.tune.tuner import install, node_key

SPEC = {
    "network": "gathered", "input": [5, 5, 3],
    "layers": [
        {"conv2d": [8, 1], "activation": "relu", "name": "a"},
        {"conv2d": [8, 3], "padding": "same", "name": "b", "inputs": ["input_layer"]},
        {"concatenate": None, "inputs": ["a", "b"]},
        {"channel_shuffle": 2},
        {"conv2d": [16, 1], "use_bias": False},
        {"batchnorm": None, "name": "out"},
    ],
}


def test_a_gathered_node_is_tuned_as_its_layer_on_the_gathered_shape():
    graph = inference_graph(cnnc.load_spec(SPEC))
    node = graph.node("out")
    assert node.op == "conv2d_bn_gathered" and not tunable(node)
    proxy = tuning_graph(graph)
    stand_in = proxy.node("out")
    assert stand_in.op == "conv2d_bn" and tunable(stand_in) and "segments" not in stand_in.attrs
    assert proxy.shape_of(stand_in.inputs[0]) == (None, 5, 5, 16)
    assert proxy.shape_of("out") == graph.shape_of("out")
    assert tuning_graph(proxy) is proxy  # nothing left to stand in for


def test_the_cached_variant_of_the_layer_sets_the_gathered_launch(device, cache_dir):
    graph = inference_graph(cnnc.load_spec(SPEC))
    backend = OpenCLBackend(device)
    proxy = tuning_graph(graph)
    stand_in = proxy.node("out")
    space = variant_space(stand_in, BindContext(proxy, 3, backend.target))
    tile = ("MR", "VW", "NV")
    chosen = next(v for v in space[1:] if v.get("algo") == "direct" and "im2col" not in v
                  and any(v[k] != space[0][k] for k in tile))
    cache = tc.TuningCache.default()
    cache.put(tc.make_entry(node_key(backend, proxy, stand_in, 3), chosen, 0.001, 0.002))
    install(backend)
    assert backend.choose_variants(graph, 3) == {"out": chosen}
    launches = [lau for n, lau in backend.plan(graph, 3).launches()
                if n == "out" and lau.kernel == "conv2d_forward"]
    assert len(launches) == 1 and launches[0].define_map["GATHERED"] == 1
    assert all(launches[0].define_map[k] == chosen[k] for k in tile)
